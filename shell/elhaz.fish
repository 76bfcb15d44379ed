# elhaz prompt hook for fish. Install: elhaz hook fish | source
# in ~/.config/fish/config.fish
#
# Before each prompt, when ELHAZ_SESSION is set and ELHAZ_REFRESH_AT has passed,
# the hook asks elhaz for fresh credentials and sources them. While they are fresh
# it only compares integers: the time comes from the `path` builtin (the mtime of /
# plus its age), so no process is started.

# The binary; `elhaz hook fish` sets it to its own path before this script.
set -q _ELHAZ_BIN; or set -g _ELHAZ_BIN elhaz

function _elhaz_now --description 'unix seconds, without a fork'
    set -l mtime (builtin path mtime /)
    set -l age (builtin path mtime --relative /)
    math "$mtime + $age"
end

function _elhaz_warn --argument-names now msg expired
    if test "$expired" = 1
        if test "$_elhaz_warned_expired" != "$ELHAZ_SESSION:$ELHAZ_EXPIRES_AT"
            set -g _elhaz_warned_expired "$ELHAZ_SESSION:$ELHAZ_EXPIRES_AT"
            set -g _elhaz_warned_at $now
            printf 'elhaz: the credentials of %s have expired: %s\n' $ELHAZ_SESSION $msg >&2
        end
        return 0
    end
    set -q _elhaz_warned_at; or set -g _elhaz_warned_at 0
    if test "$_elhaz_warned_session" != "$ELHAZ_SESSION"; or test $now -ge (math $_elhaz_warned_at + 300)
        set -g _elhaz_warned_session $ELHAZ_SESSION
        set -g _elhaz_warned_at $now
        printf 'elhaz: cannot refresh %s, keeping the current credentials: %s\n' $ELHAZ_SESSION $msg >&2
    end
end

function _elhaz_refresh --argument-names now
    set -l old "$ELHAZ_EXPIRES_AT"
    set -l out (command $_ELHAZ_BIN export $ELHAZ_SESSION -f env --shell fish 2>&1)
    set -l ok $status
    if test "$ok" = 0; and string match -q 'set -e *' -- "$out[1]"
        printf '%s\n' $out | source
        if test "$ELHAZ_EXPIRES_AT" = "$old"
            set -g _elhaz_retry_at (math $now + 60)
            _elhaz_warn $now "no newer credentials were served" 0
        else
            set -g _elhaz_retry_at 0
        end
    else
        set -g _elhaz_retry_at (math $now + 60)
        set -l first "$out[1]"
        set -l expired 0
        if string match -qr '^[0-9]+$' -- "$ELHAZ_EXPIRES_AT"; and test $now -ge $ELHAZ_EXPIRES_AT
            set expired 1
        end
        _elhaz_warn $now (string replace -r '^elhaz: ' '' -- $first) $expired
    end
end

function _elhaz_hook --on-event fish_prompt
    set -q ELHAZ_SESSION; or return
    test -n "$ELHAZ_SESSION"; or return
    set -l now (_elhaz_now)
    set -l at "$ELHAZ_REFRESH_AT"
    if not string match -qr '^[0-9]+$' -- "$at"
        set at 0
        if string match -qr '^[0-9]+$' -- "$ELHAZ_EXPIRES_AT"
            set at (math $ELHAZ_EXPIRES_AT - 600)
        end
    end
    set -q _elhaz_retry_at; or set -g _elhaz_retry_at 0
    if test $now -ge $at; and test $now -ge $_elhaz_retry_at
        _elhaz_refresh $now
    end
end

# `elhaz use NAME` and `elhaz use --clear` change this shell; the rest goes to
# the binary.
function elhaz --description 'elhaz, with `use` acting on this shell'
    if test "$argv[1]" = use
        set -l out (command $_ELHAZ_BIN use --eval --shell fish $argv[2..-1])
        or return
        printf '%s\n' $out | source
        set -g _elhaz_retry_at 0
    else
        command $_ELHAZ_BIN $argv
    end
end
