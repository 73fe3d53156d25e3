"""lrfer.serve"""
