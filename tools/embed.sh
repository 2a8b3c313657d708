#!/bin/sh
# embed.sh FILE NAME — print a C header that holds FILE as the string constant NAME.
# Used by the Makefile to compile results/schema.sql and results/plot.gp into the binary.
set -eu
printf '/* Generated from %s by tools/embed.sh; do not edit. */\n' "$1"
printf 'static const char %s[] =\n' "$2"
sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' -e 's/^/    "/' -e 's/$/\\n"/' "$1"
printf '    "";\n'
