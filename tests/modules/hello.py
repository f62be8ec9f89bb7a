#!/usr/bin/env python3
# A minimal Python module: prints something it computed, so the tests can
# check the interpreter really ran (not just that the file was readable).
import sys

print(f"sum={sum([1, 2, 3, 4, 5])} python={sys.version_info.major}")
