#!/usr/bin/env python3
"""A Python module: the primes below 50, computed in the jail."""
import sys

limit = int(sys.argv[1]) if len(sys.argv) > 1 else 50
primes = [n for n in range(2, limit) if all(n % d for d in range(2, int(n ** 0.5) + 1))]
print(" ".join(map(str, primes)))
