#!/bin/bash
# usage (from the repository root, after `cargo build --release`): tests/bench/console_pages.sh DBURL
# — serves the release build on DBURL, signs in, times each console page.
set -e
export IYS_RELAY__DATABASE__URL=$1
echo "bench-parola-12345" | target/release/iys-relay user add bench --role admin >/dev/null 2>&1 || true
IYS_RELAY__REPORTER__ENABLED=false IYS_RELAY__IYS__SYNC__ENABLED=false IYS_RELAY__AUDIT__ENABLED=false \
  target/release/iys-relay --log-format json serve > /tmp/console-bench-server.log 2>&1 &
pid=$!
trap "kill $pid" EXIT
for i in $(seq 200); do curl -fs -o /dev/null http://127.0.0.1:8080/readyz && break; sleep 0.1; done
jar=$(mktemp); curl -s -c $jar http://127.0.0.1:8080/console/login -o /tmp/console-login.html
tok=$(grep -o 'name="login_csrf" value="[0-9a-f]*"' /tmp/console-login.html | sed 's/.*value="//;s/"//')
curl -s -c $jar -b $jar -X POST -d "login_csrf=$tok&next=/console&username=bench&password=bench-parola-12345" \
  http://127.0.0.1:8080/console/login -o /dev/null
sed -i 's/\tTRUE\t/\tFALSE\t/' $jar   # curl sends a Secure cookie over http only when told
csrf=$(curl -s -b $jar http://127.0.0.1:8080/console/alerts | grep -o 'name="csrf" value="[0-9a-f]*"' | head -1 | sed 's/.*value="//;s/"//')
for u in "/console" "/console/person?q=0533%20000%2012%2034" "/console/jobs?state=failed" "/console/alerts" "/console/actions" "/console/links"; do
  for i in $(seq 20); do curl -s -b $jar "http://127.0.0.1:8080$u" -o /tmp/console-page.html -w "%{http_code} %{time_total}\n"; done |
    sort -k2 -n | awk -v u="$u" '{c[$1]++; a[NR]=$2} END {printf "%-40s status %s  p50 %.1f ms  p95 %.1f ms  max %.1f ms\n", u, (length(c)==1 ? $1 : "MIXED"), a[10]*1000, a[19]*1000, a[NR]*1000}'
done
for i in $(seq 10); do curl -s -b $jar -X POST -d "csrf=$csrf&q=%2B905330001234" http://127.0.0.1:8080/console/person/pack -o /tmp/console-pack.zip -w "%{http_code} %{time_total}\n"; done |
  sort -k2 -n | awk '{a[NR]=$2} END {printf "%-40s status %s  p50 %.1f ms  max %.1f ms\n", "POST /console/person/pack", $1, a[5]*1000, a[NR]*1000}'
