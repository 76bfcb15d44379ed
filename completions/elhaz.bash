# elhaz completion for bash 4 or later, with or without the bash-completion package:
# `source <(elhaz completions bash)` in ~/.bashrc. At each TAB elhaz answers itself
# (COMPLETE=bash elhaz -- WORDS...): one candidate a line, or `\001command N` when the
# words from N on are a command of their own (`elhaz exec NAME -- CMD...`), completed
# then as bash completes that command, or `\001files` for file names.
# shellcheck shell=bash disable=SC2250,SC2312 # braces where needed; <(...)'s status.

_elhaz_complete() {
  local cur=$2 answer line=$COMP_LINE at=0 i n=-1 cword=0 between word lead
  # The words as typed: bash splits them at the : and = of COMP_WORDBREAKS, and a
  # NAME such as team:prod (or --opt=value) is one word for elhaz. first[N] is the
  # COMP_WORDS index where word N starts.
  local -a words=() first=()
  for ((i = 0; i < ${#COMP_WORDS[@]}; i++)); do
    word=${COMP_WORDS[i]}
    # At the cursor, the word up to it (a lone : or = is what the cursor follows).
    if ((i == COMP_CWORD)) && [[ $word != [:=] ]]; then word=$cur; fi
    between=${line:at}
    [[ -z $word ]] || between=${between%%"$word"*}
    at=$((at + ${#between} + ${#word}))
    if ((n >= 0)) && [[ -z $between ]] && [[ $word == [:=]* || ${words[n]} == *[:=] ]]; then
      words[n]+=$word
    else
      n=$((n + 1))
      words[n]=$word
      first[n]=$i
    fi
    ((i == COMP_CWORD)) && cword=$n
  done
  # What bash keeps of the word before the cursor's part of it (team: of team:pro).
  lead=${words[cword]%"$cur"}
  # shellcheck disable=SC2276 # the template's variable and binary are filled in when generated.
  answer=$(_CLAP_COMPLETE_INDEX=$cword COMPLETE=bash elhaz -- "${words[@]}" 2>/dev/null) || return 0
  # A space after the word, unless it ends in = / or :.
  compopt +o nospace 2>/dev/null
  COMPREPLY=()
  case $answer in
  $'\001command '*)
    _elhaz_complete_command "${first[${answer#$'\001command '}]}" "$cur"
    ;;
  $'\001files')
    compopt -o default 2>/dev/null
    ;;
  ?*)
    _elhaz_lines <<<"$answer"
    if [[ -n $lead ]]; then
      for i in "${!COMPREPLY[@]}"; do
        COMPREPLY[i]=${COMPREPLY[i]#"$lead"}
      done
    fi
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
