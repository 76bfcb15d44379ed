# The prompt of `elhaz shell` for fish: the session's name before the user's own
# prompt, with $status kept for it. The binary adds it to fish's --init-command.
function _elhaz_status --argument-names s
    return $s
end
if functions -q fish_prompt
    functions -c fish_prompt _elhaz_user_fish_prompt
else
    function _elhaz_user_fish_prompt
        printf '%s> ' (prompt_pwd)
    end
end
function fish_prompt
    set -l s $status
    if set -q ELHAZ_SESSION; and test -n "$ELHAZ_SESSION"
        printf '(%s) ' $ELHAZ_SESSION
    end
    _elhaz_status $s
    _elhaz_user_fish_prompt
end
