"""lrfer.infer"""
