# shellcheck shell=bash
# The rc file `elhaz shell` starts bash with, read from a pipe. The binary puts the
# sections below together: the hook's copy of the source keys and the hook itself go
# between "user" and "prompt".
# elhaz-section: user
# elhaz shell: your ~/.bashrc, then the elhaz hook.
# shellcheck disable=SC1090 # the user's own file, which is not ours to check.
if [[ -f ~/.bashrc ]]; then . ~/.bashrc; fi
# elhaz-section: prompt
# shellcheck disable=SC2016,SC2154 # expanded by bash at each prompt, not here.
PS1='${ELHAZ_SESSION:+(${ELHAZ_SESSION}) }'"${PS1-}"
# elhaz-section: close
# This file is a pipe elhaz handed over: close it.
case ${BASH_SOURCE[0]-} in /dev/fd/*) eval "exec ${BASH_SOURCE[0]#/dev/fd/}<&-" ;;
*) ;;
esac
