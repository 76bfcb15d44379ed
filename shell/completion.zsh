#compdef @BIN@
# elhaz completion for zsh: this file as _elhaz in a directory of $fpath before
# compinit runs, or `source <(elhaz completions zsh)` after it. At each TAB elhaz
# answers itself (COMPLETE=zsh elhaz -- WORDS...): `value:description` lines, or
# `\001command N` when the words from N on are a command of their own (`elhaz exec
# NAME -- CMD...`), completed then as zsh completes that command, or `\001files` for
# file names.

_elhaz_complete() {
  local answer
  answer=$(_CLAP_COMPLETE_INDEX=$((CURRENT - 1)) @VAR@=zsh @COMPLETER@ -- "${words[@]}" 2>/dev/null) || return 1
  case $answer in
  ($'\001command '*)
    local at=${answer#$'\001command '}
    shift $at words
    (( CURRENT -= at ))
    _normal
    return
    ;;
  ($'\001files')
    _files
    return
    ;;
  ('')
    return 1
    ;;
  esac
  local -a dirs other
  local line value
  for line in "${(@f)answer}"; do
    value=${line%%:*}
    if [[ $value == */ ]]; then
      dirs+=("${value%/}${line#"$value"}")
    else
      other+=("$line")
    fi
  done
  local ret=1
  (( $#dirs )) && _describe -V values dirs -S / -r / && ret=0
  (( $#other )) && _describe -V values other && ret=0
  return ret
}

# Autoloaded from $fpath, the first run is the first TAB: complete it as well.
if [ "$funcstack[1]" = "_elhaz" ]; then
  _elhaz_complete "$@"
else
  compdef _elhaz_complete @BIN@
fi
