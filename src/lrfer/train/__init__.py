"""lrfer.train"""
