#!/bin/sh
# A throw-away PostgreSQL cluster for the tests (Debian's postgresql):
#
#   sh tests/pg.sh start DIR   initdb into DIR/data, start the server on a
#                              Unix socket in DIR (no TCP), create the
#                              database "airlock"; prints the server's URL
#   sh tests/pg.sh stop DIR    stop it and remove DIR
#   sh tests/pg.sh down DIR    stop the server (a fast shutdown: its
#                              clients' sessions end), keep DIR
#   sh tests/pg.sh up DIR      start it again after down
#
# The server refuses to run as root: under root it runs as nobody (the
# tests, as root, connect over the socket; trust authentication, the
# socket directory is the only way in). fsync is off: the tests kill
# clients, never the machine; PG_FSYNC=on (make bench) turns it on.
set -eu
cmd=${1:?start|stop} dir=${2:?DIR}
bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
if [ -z "$bin" ] || [ ! -x "$bin/initdb" ]; then
	echo "tests/pg.sh: no PostgreSQL server (apt-get install postgresql;" \
		"tools/install-deps.sh installs it)" >&2
	exit 2
fi

as_server() {
	if [ "$(id -u)" -eq 0 ]; then
		setpriv --reuid=nobody --regid=nogroup --clear-groups -- "$@"
	else
		"$@"
	fi
}

# on a Unix socket in DIR only, as nobody under root
server_start() {
	as_server "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w \
		-o "-k $dir -c listen_addresses= -c fsync=${PG_FSYNC:-off}" start \
		>/dev/null 2>&1 || { cat "$dir/server.log" >&2; exit 1; }
}

case $cmd in
start)
	mkdir -p "$dir"
	chmod 0755 "$dir"
	[ "$(id -u)" -ne 0 ] || chown nobody:nogroup "$dir"
	as_server "$bin/initdb" -D "$dir/data" -U airlock --auth=trust \
		-E UTF8 --locale=C.UTF-8 --no-sync >"$dir/initdb.log" 2>&1 ||
		{ cat "$dir/initdb.log" >&2; exit 1; }
	server_start
	"$bin/psql" -qAt -h "$dir" -U airlock -d postgres \
		-c "CREATE DATABASE airlock" >/dev/null
	echo "postgresql:///airlock?host=$dir&user=airlock"
	;;
down)
	as_server "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1 ||
		{ cat "$dir/server.log" >&2; exit 1; }
	;;
up)
	server_start
	;;
stop)
	[ -d "$dir/data" ] &&
		as_server "$bin/pg_ctl" -D "$dir/data" -m immediate -w stop \
			>/dev/null 2>&1 || true
	rm -rf "$dir"
	;;
*)
	echo "tests/pg.sh: start, stop, down or up DIR" >&2
	exit 2
	;;
esac
