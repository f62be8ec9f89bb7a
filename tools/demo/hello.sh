#!/bin/sh
# A shell module: reads its argument, reports where it runs.
echo "hello, $1, from $(hostname) as uid $(id -u)"
