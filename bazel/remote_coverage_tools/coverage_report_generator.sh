#!/bin/sh
echo "coverage reports are not generated in the offline build" >&2
exit 1
