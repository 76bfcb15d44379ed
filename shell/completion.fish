# elhaz completion for fish: this file as ~/.config/fish/completions/elhaz.fish, or
# `elhaz completions fish | source`. At each TAB elhaz answers itself (COMPLETE=fish
# elhaz -- WORDS...): `value<TAB>description` lines, or `\x01command N` when the words
# from N on are a command of their own (`elhaz exec NAME -- CMD...`), completed then
# as fish completes that command, or `\x01files` for file names.
function __elhaz_complete
    set -l tokens (commandline --current-process --tokenize --cut-at-cursor)
    set -l current (commandline --current-token)
    set -l answer (@VAR@=fish @COMPLETER@ -- $tokens $current 2>/dev/null)
    or return
    set -q answer[1]
    or return
    set -l at (string replace -rf '^\x01command (\d+)$' '$1' -- $answer[1])
    if test -n "$at"
        set -l line (string escape -- $tokens[(math $at + 1)..-1]) $current
        complete --do-complete (string join ' ' -- $line)
    else if test "$answer[1]" = \x01files
        __fish_complete_path $current
    else
        printf '%s\n' $answer
    end
end

complete --keep-order --exclusive --command @BIN@ --arguments '(__elhaz_complete)'
