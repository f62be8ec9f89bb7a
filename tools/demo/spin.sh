#!/bin/sh
# A module that never ends: the deadline has to end it.
while :; do :; done
