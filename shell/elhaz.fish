# elhaz prompt hook for fish. Install: elhaz hook fish | source
# in ~/.config/fish/config.fish
#
# While the credentials are fresh a prompt only compares integers (the time is the
# mtime of / plus its age, from the `path` builtin): no process starts. Once
# ELHAZ_REFRESH_AT (else ELHAZ_EXPIRES_AT - 600) and the retry time have passed, it
# sources `elhaz hook fish --refresh`, which decides the rest.
set -q _ELHAZ_BIN; or set -g _ELHAZ_BIN elhaz

function _elhaz_hook --on-event fish_prompt
    test "$PWD" = "$_ELHAZ_PWD"; or _elhaz_pin
    # A `--server` session refreshes through its endpoint.
    test -n "$ELHAZ_SESSION"; and not set -q AWS_CONTAINER_AUTHORIZATION_TOKEN; or return
    set -l now (math (builtin path mtime /) + (builtin path mtime --relative /))
    set -l at (string match -r '^[0-9]{1,18}$' -- "$ELHAZ_REFRESH_AT")
    or set at (string match -qr '^[0-9]{1,18}$' -- "$ELHAZ_EXPIRES_AT"; and math $ELHAZ_EXPIRES_AT - 600; or echo 0)
    set -q _ELHAZ_RETRY_AT; or set -g _ELHAZ_RETRY_AT 0
    if test $now -ge $at; and test $now -ge $_ELHAZ_RETRY_AT
        set -l fish_trace # tracing would show the credentials.
        set -g _ELHAZ_RETRY_AT (math $now + 60) # until it answers: Ctrl-C must not retry at once.
        _elhaz_bin --client-timeout 2 hook fish --refresh --warned "$_ELHAZ_WARNED" | source
    end
end

# A project pin: the nearest .elhaz.yaml up to / or $HOME, found with builtins. Only
# when it is another file than at the last prompt does the binary decide (switch,
# restore, or a warning); a cd within the same tree starts no process.
function _elhaz_pin
    set -l fish_trace # tracing would show the credentials.
    set -g _ELHAZ_PWD $PWD
    set -l d $PWD
    test "$d" = /; and set d ''
    set -l found ''
    while true
        if test -e "$d/.elhaz.yaml"; or test -L "$d/.elhaz.yaml"
            set found "$d/.elhaz.yaml"
            break
        end
        test -n "$d"; and test "$d" != "$HOME"; or break
        set d (string replace -r '/[^/]*$' '' -- "$d")
    end
    test "$found" = "$_ELHAZ_PIN"; and return
    set -g _ELHAZ_PIN $found
    _elhaz_bin --client-timeout 2 hook fish --pin "$found" --pinned "$_ELHAZ_PINNED" --use-tree "$_ELHAZ_USE_TREE" --stashed "$_elhaz_stashed" --before-pin "$_ELHAZ_BEFORE_PIN" | source
end

# The source keys this shell keeps (from `elhaz shell`, or from before the first
# `use`) go to the binary as assignments for one command: never exported, nor argv.
function _elhaz_bin
    set -l fish_trace
    if set -q _elhaz_src
        ELHAZ_SOURCE_AWS_ACCESS_KEY_ID="$_elhaz_src_AWS_ACCESS_KEY_ID" ELHAZ_SOURCE_AWS_SECRET_ACCESS_KEY="$_elhaz_src_AWS_SECRET_ACCESS_KEY" ELHAZ_SOURCE_AWS_SESSION_TOKEN="$_elhaz_src_AWS_SESSION_TOKEN" command $_ELHAZ_BIN $argv
    else
        command $_ELHAZ_BIN $argv
    end
end

# `elhaz use NAME|--clear` sources what the binary prints: the first `use` saves what
# it changes in unexported copies, `--clear` puts it back, as a venv's deactivate
# does. The rest goes to the binary.
function elhaz --description 'elhaz, with `use` acting on this shell'
    set -l fish_trace
    test "$argv[1]" = use; or begin
        _elhaz_bin $argv
        return
    end
    set -l out (_elhaz_bin use --eval --shell fish $argv[2..-1]); or return
    printf '%s\n' $out | source
    # An explicit NAME wins in this pin's tree; --clear ends it, a pin's own, and
    # the NAME a pin's tree would give back on leaving.
    if test "$argv[2]" = --clear
        set -e _ELHAZ_USE_TREE
        set -e _ELHAZ_PINNED
        set -e _ELHAZ_BEFORE_PIN
    else
        set -g _ELHAZ_USE_TREE "$_ELHAZ_PIN"
        set -g _ELHAZ_PINNED ''
    end
    return 0
end
