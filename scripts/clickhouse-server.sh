#!/usr/bin/env bash
# Start or stop a private ClickHouse server on loopback, everything under DIR (no root paths touched).
#   scripts/clickhouse-server.sh start DIR HTTP_PORT TCP_PORT
#   scripts/clickhouse-server.sh stop DIR
set -euo pipefail
cmd=${1:?start|stop}; dir=${2:?directory}
case "$cmd" in
  start)
    http=${3:?http port}; tcp=${4:?tcp port}
    mkdir -p "$dir/data" "$dir/tmp" "$dir/user_files" "$dir/format_schemas" "$dir/log"
    cat > "$dir/config.xml" <<XML
<?xml version="1.0"?>
<yandex>
  <logger><level>warning</level><log>$dir/log/server.log</log><errorlog>$dir/log/error.log</errorlog><console>0</console></logger>
  <http_port>$http</http_port>
  <tcp_port>$tcp</tcp_port>
  <listen_host>127.0.0.1</listen_host>
  <path>$dir/data/</path>
  <tmp_path>$dir/tmp/</tmp_path>
  <user_files_path>$dir/user_files/</user_files_path>
  <format_schema_path>$dir/format_schemas/</format_schema_path>
  <users_config>/etc/clickhouse-server/users.xml</users_config>
  <default_profile>default</default_profile>
  <default_database>default</default_database>
  <mark_cache_size>268435456</mark_cache_size>
  <max_concurrent_queries>100</max_concurrent_queries>
  <include_from>$dir/clusters.xml</include_from>
  <remote_servers incl="remote_servers" optional="true" />
</yandex>
XML
    [ -f "$dir/clusters.xml" ] || echo '<yandex><remote_servers></remote_servers></yandex>' > "$dir/clusters.xml"
    clickhouse-server --config-file="$dir/config.xml" >"$dir/log/stdout.log" 2>&1 &
    pid=$!
    echo "$pid" > "$dir/pid"
    # Up to a minute: on a loaded two-core machine a cold start takes seconds. A server that died (a port
    # already taken, a bad directory) is reported at once with its own words, exit 3, so the caller can
    # pick other ports; --max-time keeps a stranger holding the port from stalling the wait.
    for _ in $(seq 1 300); do
      if curl -sf --max-time 2 "http://127.0.0.1:$http/?query=SELECT%201" >/dev/null 2>&1; then exit 0; fi
      if ! kill -0 "$pid" 2>/dev/null; then
        echo "clickhouse-server exited while starting on ports $http/$tcp:" >&2
        tail -n 5 "$dir/log/error.log" "$dir/log/stdout.log" >&2 2>/dev/null || true
        exit 3
      fi
      sleep 0.2
    done
    kill "$pid" 2>/dev/null || true
    echo "clickhouse-server did not answer on port $http within 60 s; see $dir/log" >&2
    exit 1
    ;;
  stop)
    if [ -f "$dir/pid" ]; then
      pid=$(cat "$dir/pid")
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || exit 0; sleep 0.2; done
      kill -9 "$pid" 2>/dev/null || true
    fi
    ;;
  *) echo "usage: $0 start DIR HTTP_PORT TCP_PORT | stop DIR" >&2; exit 2 ;;
esac
