#!/bin/sh
# test_conf.sh CONF RENDEZVOUSD - packaging_conf: the packaged
# configuration file (packaging/help2conf, from --help) has one key per
# option of --help (but config), shows every default, and rendezvousd
# reads it as shipped and with every default line uncommented: it then
# gets past the configuration (exit 1 for the --db given on the command
# line in a missing directory, not 2 for a bad configuration).
set -u
CONF=$1 SERVERD=$2
work=$(mktemp -d /tmp/rdv-conf-XXXXXX)
trap 'rm -rf "$work"' EXIT
fail=0
[ -s "$CONF" ] || { echo "FAIL: $CONF missing"; exit 1; }
# the options: the --help entries with an "env ..., default ..." line
env -i "$SERVERD" --help | awk '/^  --[a-z]/ { k = $1; sub(/^--/, "", k) }
  /^ +env [A-Z_]+, default / { print k }' | grep -vx config | sort >"$work/help"
sed -n 's/^#\{0,1\}\([a-z][a-z-]*\) = .*/\1/p' "$CONF" | sort >"$work/keys"
if ! cmp -s "$work/help" "$work/keys"; then
  echo "FAIL: keys of $CONF differ from the options of --help (< help, > file):"
  diff "$work/help" "$work/keys"
  fail=1
fi
[ "$(wc -l <"$work/keys")" -ge 20 ] || { echo "FAIL: only $(wc -l <"$work/keys") keys"; fail=1; }
# each default as --help prints it
env -i "$SERVERD" --help | awk '/^  --[a-z]/ { k = $1; sub(/^--/, "", k) }
  /^ +env [A-Z_]+, default / { d = $0; sub(/.*, default /, "", d); if (d == "none") d = ""; print k " = " d }' |
  grep -v '^config = ' | sort >"$work/defaults"
sed -n 's/^#\([a-z][a-z-]* = .*\)/\1/p' "$CONF" | sort >"$work/shown"
missing=$(comm -23 "$work/defaults" "$work/shown" | grep -v '^db = ')
[ -z "$missing" ] || { echo "FAIL: defaults not shown in $CONF:"; echo "$missing"; fail=1; }

# run_conf FILE LABEL: rendezvousd accepts the file
run_conf() {
  out=$(env -i "$SERVERD" --config "$1" --db /nonexistent-dir/x.db 2>&1)
  rc=$?
  if [ $rc -ne 1 ] || ! printf '%s\n' "$out" | grep -q 'nonexistent-dir'; then
    echo "FAIL: rendezvousd --config ($2): exit status $rc (want 1: past the configuration):"
    printf '%s\n' "$out"
    fail=1
  fi
}
run_conf "$CONF" "as packaged"
sed 's/^#\([a-z][a-z-]* = \)/\1/' "$CONF" | grep -v '^db = /var' >"$work/all.conf"
run_conf "$work/all.conf" "every default uncommented"
[ $fail -eq 0 ] && echo "PASS"
exit $fail
