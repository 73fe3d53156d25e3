"""lrfer.data"""
