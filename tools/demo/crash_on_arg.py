#!/usr/bin/env python3
"""A module that passes validation but segfaults when given "boom": it reads
address 0 through ctypes, the kind of bug that only shows up at runtime."""
import ctypes
import sys

if "boom" in sys.argv[1:]:
    ctypes.string_at(0)
print("all good:", " ".join(sys.argv[1:]) or "(no arguments)")
