"""lrfer.models"""
