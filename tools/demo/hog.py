#!/usr/bin/env python3
"""A module that wants far more memory than its limit."""
blocks = []
while True:
    blocks.append(bytearray(16 * 1024 * 1024))
