# bash completion for oauth-token(1)                       -*- shell-script -*-
#
# Commands, options and their values; profile names come from the helper
# itself (`oauth-token profiles`, reading the same files the command will:
# the -c options already typed, else $PAM_OAUTH_CONFIG, else the defaults),
# so nothing here parses the configuration.  After `curl`, curl's own
# completion takes over when bash-completion provides it.

_oauth_token_profiles()
{
    local -a cfg=()
    local i w
    for ((i = 1; i < ${#COMP_WORDS[@]}; i++)); do
        w=${COMP_WORDS[i]}
        case $w in
        -c | --config)
            if [[ ${COMP_WORDS[i + 1]} == = ]]; then
                cfg+=(-c "${COMP_WORDS[i + 2]}")
            else
                cfg+=(-c "${COMP_WORDS[i + 1]}")
            fi
            ;;
        --config=?*) cfg+=(-c "${w#--config=}") ;;
        -c?*) cfg+=(-c "${w#-c}") ;;
        esac
    done
    "${COMP_WORDS[0]}" "${cfg[@]}" profiles 2>/dev/null
}

_oauth_token_keys()
{
    # the keys -o takes, from the option table that --help prints
    "${COMP_WORDS[0]}" --help 2>/dev/null |
        sed -n '/^Profile keys for -o/,/^$/{s/^  \([a-z_]*\) .*/\1=/p}'
}

_oauth_token()
{
    local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD - 1]}
    local commands="get header curl-config curl status refresh erase login
        check-config fleet-key profiles git docker"
    local options="-p --profile -c --config -o --option --format --force
        -v --verbose --username --password-stdin --if-due -h --help
        --version"
    local i w command="" IFS=$' \t\n'

    # bash splits "--profile=x" at '=' (COMP_WORDBREAKS): join it again
    if [[ $cur == = ]]; then
        cur=""
    elif [[ $prev == = && COMP_CWORD -ge 2 ]]; then
        prev=${COMP_WORDS[COMP_CWORD - 2]}
    elif [[ $cur == --*=* ]]; then
        prev=${cur%%=*}
        cur=${cur#*=}
    fi

    # the command typed so far, skipping options and their values
    for ((i = 1; i < COMP_CWORD; i++)); do
        w=${COMP_WORDS[i]}
        case $w in
        -p | --profile | -c | --config | -o | --option | --format | --username)
            ((i++))
            [[ ${COMP_WORDS[i]} == = ]] && ((i++))
            ;;
        -*) ;;
        =) ;;
        *)
            command=$w
            break
            ;;
        esac
    done

    if [[ $command == curl ]]; then
        if declare -F _command_offset >/dev/null; then
            _command_offset $((i))
        else
            COMPREPLY=($(compgen -f -- "$cur"))
        fi
        return
    fi

    case $prev in
    -p | --profile)
        COMPREPLY=($(compgen -W "$(_oauth_token_profiles)" -- "$cur"))
        return
        ;;
    -c | --config)
        COMPREPLY=($(compgen -f -- "$cur"))
        compopt -o filenames 2>/dev/null
        return
        ;;
    -o | --option)
        COMPREPLY=($(compgen -W "$(_oauth_token_keys)" -- "$cur"))
        compopt -o nospace 2>/dev/null
        return
        ;;
    --format)
        COMPREPLY=($(compgen -W "text json exec-credential" -- "$cur"))
        return
        ;;
    --username)
        return
        ;;
    esac

    if [[ $command == git && $cur != -* ]]; then
        COMPREPLY=($(compgen -W "get store erase capability" -- "$cur"))
        return
    fi
    if [[ $command == fleet-key && $cur != -* ]]; then
        COMPREPLY=($(compgen -f -- "$cur"))
        compopt -o filenames 2>/dev/null
        return
    fi
    if [[ $command == docker && $cur != -* ]]; then
        COMPREPLY=($(compgen -W "get store erase list version" -- "$cur"))
        return
    fi
    if [[ $cur == -* || -n $command ]]; then
        COMPREPLY=($(compgen -W "$options" -- "$cur"))
        return
    fi
    COMPREPLY=($(compgen -W "$commands" -- "$cur"))
}

complete -F _oauth_token oauth-token
