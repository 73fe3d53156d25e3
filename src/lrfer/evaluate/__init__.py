"""lrfer.evaluate"""
