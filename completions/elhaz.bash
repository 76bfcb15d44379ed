# elhaz completion for bash 4 or later, with or without the bash-completion package:
# `source <(elhaz completions bash)` in ~/.bashrc. At each TAB elhaz answers itself
# (COMPLETE=bash elhaz -- WORDS...): one candidate a line, or `\001command N` when the
# words from N on are a command of their own (`elhaz exec NAME -- CMD...`), completed
# then as bash completes that command, or `\001files` for file names.
# shellcheck shell=bash disable=SC2250,SC2312 # braces where needed; <(...)'s status.

_elhaz_complete() {
  local cur=$2 answer
  local -a words=("${COMP_WORDS[@]}")
  words[COMP_CWORD]=$cur
  answer=$(_CLAP_COMPLETE_INDEX=$COMP_CWORD COMPLETE=bash elhaz -- "${words[@]}" 2>/dev/null) || return 0
  # A space after the word, unless it ends in = / or :.
  compopt +o nospace 2>/dev/null
  COMPREPLY=()
  case $answer in
  $'\001command '*)
    _elhaz_complete_command "${answer#$'\001command '}" "$cur"
    ;;
  $'\001files')
    compopt -o default 2>/dev/null
    ;;
  ?*)
    _elhaz_lines <<<"$answer"
    if ((${#COMPREPLY[@]} == 1)) && [[ ${COMPREPLY[0]} == *[=/:] ]]; then
      compopt -o nospace 2>/dev/null
    fi
    ;;
  *) ;; # nothing to offer
  esac
}

# COMPREPLY grows by each line of stdin.
_elhaz_lines() {
  local line
  while IFS= read -r line; do
    COMPREPLY+=("$line")
  done
}

# The words from $1 on are a command line of their own, and $2 is the word at the
# cursor: complete them as bash completes that command. With the bash-completion
# package, its _command_offset does; without it, the command's own completion
# (`complete -p CMD`) when it has one, else commands, then file names.
_elhaz_complete_command() {
  local at=$1 cur=$2 i
  compopt +o nosort 2>/dev/null
  if declare -F _comp_command_offset >/dev/null; then
    _comp_command_offset "$at"
    return
  elif declare -F _command_offset >/dev/null; then
    _command_offset "$at"
    return
  fi
  # The line as if it started at word $at, as _command_offset leaves it.
  for ((i = 0; i < at; i++)); do
    local before=${#COMP_LINE}
    COMP_LINE=${COMP_LINE#*"${COMP_WORDS[i]}"}
    ((COMP_POINT -= before - ${#COMP_LINE}))
  done
  local lead=${COMP_LINE%%[![:space:]]*}
  COMP_LINE=${COMP_LINE#"$lead"}
  ((COMP_POINT -= ${#lead}))
  COMP_WORDS=("${COMP_WORDS[@]:at}")
  ((COMP_CWORD -= at))
  if ((COMP_CWORD == 0)); then
    compopt -o filenames 2>/dev/null
    _elhaz_lines < <(compgen -d -c -- "$cur" | sort -u)
    return
  fi
  local cmd=${COMP_WORDS[0]} spec
  spec=$(complete -p -- "$cmd" 2>/dev/null || complete -p -- "${cmd##*/}" 2>/dev/null)
  if [[ $spec == *" -F "* ]]; then
    local func=${spec#* -F }
    func=${func%% *}
    "$func" "$cmd" "$cur" "${COMP_WORDS[COMP_CWORD - 1]}"
    while [[ $spec == *" -o "* ]]; do
      spec=${spec#* -o }
      compopt -o "${spec%% *}" 2>/dev/null
    done
  elif [[ -n $spec ]]; then
    spec=${spec#complete }
    spec=${spec% *}
    _elhaz_lines < <(eval "compgen $spec -- \"\$cur\"" 2>/dev/null)
  else
    compopt -o default 2>/dev/null
  fi
}

if ((BASH_VERSINFO[0] > 4 || (BASH_VERSINFO[0] == 4 && BASH_VERSINFO[1] >= 4))); then
  complete -o nospace -o nosort -F _elhaz_complete elhaz
else
  complete -o nospace -F _elhaz_complete elhaz
fi
