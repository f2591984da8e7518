#!/usr/bin/env bash
# make check's short soak (~60 s plus the ensemble's start); `make soak`
# runs the long one. The soak starts its own ensemble.
exec "${top_builddir:-.}/tests/soak" "${ZKR_SOAK_SECONDS:-60}"
