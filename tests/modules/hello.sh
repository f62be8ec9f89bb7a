#!/bin/sh
# A minimal shell module: greets its first argument, so the tests can see
# that the interpreter was found inside the jail and the argument arrived.
echo "hello, ${1:-nobody}"
