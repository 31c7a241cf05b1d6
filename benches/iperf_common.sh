# Shared by the iperf3 benchmarks (sourced, POSIX sh): the median of the
# numbers on stdin, and one iperf3 stream between two namespaces. The
# caller sets SECS (seconds per stream).

median() { sort -g | awk '{v[NR]=$1} END {if (NR==0) print "nan"; else print v[int((NR+1)/2)]}'; }

# $1 client namespace, $2 server namespace, $3 server address: Gbit/s.
iperf() {
    ip netns exec "$2" iperf3 -s -1 -D -B "$3" >/dev/null
    i=0
    until ip netns exec "$2" ss -ltn 2>/dev/null | grep -q "$3:5201"; do
        i=$((i + 1)); [ $i -gt 200 ] && { echo "iperf3 server did not start in $2" >&2; return 1; }
        sleep 0.01
    done
    ip netns exec "$1" iperf3 -c "$3" -t "$SECS" -J \
        | sed -n 's/.*"bits_per_second":[[:space:]]*\([0-9.e+]*\).*/\1/p' | tail -1 \
        | awk '{printf "%.3f\n", $1/1e9}'
}
