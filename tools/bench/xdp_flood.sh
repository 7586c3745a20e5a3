#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# xdp_flood -- SYN flood dropped by Sluice's XDP program vs. by an nftables rule
#
# The same flood (pktgen, max rate, one source, TCP SYN to the service port) is sent from
# namespace A into a veth whose far end, in namespace B, drops it:
#   xdp      Sluice XDP on the veth (the source is a tenant limited to 100 SYN/s)
#   bare     a two-instruction "return XDP_DROP" program (xdp_drop_anchor): the cost of
#            getting a packet into XDP at all on this interface, without Sluice's work
#   nft      XDP detached; nftables `ip saddr S tcp dport P drop` in an inet prerouting
#            chain at raw priority (-300), the earliest IP-layer hook a firewall uses
#   nft-ing  the same rule in a netdev ingress chain (the earliest nftables hook), for
#            reference
#   sendonly the receiving veth's MTU is set below the frame size, so the sending veth
#            discards every frame before any receive processing: the sender's own cost,
#            subtracted from the others to give the receive-side cost per packet
# Rounds are interleaved (sendonly, xdp, bare, nft, nft-ing, sendonly, ...) so machine noise
# hits all alike; the median round of each is reported. Packets/s is what pktgen pushed (on
# a veth the receive path runs in the sender's softirq, so a cheaper drop lets it send
# faster). CPU is pktgen's own user + system time plus every ksoftirqd's, per million
# packets: sender and receiver together; minus the sendonly figure, the receive side
# alone. Frames carry 100 payload bytes in every mode, for sendonly's MTU trick. Drops are
# checked (sluicectl stats, the nft counter, or sent minus the TCP segments that reached
# the stack), so a run that did not drop is not reported.
#
# Usage: xdp_flood [--rounds N] [--duration SECONDS]  (root; binaries next to this script
# or in $OUTPUT, default .output)
set -euo pipefail

ROUNDS=3
DURATION=3
while [ $# -gt 0 ]; do
	case "$1" in
	--rounds) ROUNDS="$2"; shift 2 ;;
	--duration) DURATION="$2"; shift 2 ;;
	-h|--help) awk 'NR > 2 && /^#/ { sub(/^# ?/, ""); print; next } NR > 2 { exit }' "$0"; exit 0 ;;
	*) echo "xdp_flood: $1: unknown option (valid: --rounds N, --duration SECONDS)" >&2; exit 2 ;;
	esac
done
case "$ROUNDS" in ''|*[!0-9]*|0) echo "xdp_flood: --rounds $ROUNDS: expected 1 or more" >&2; exit 2 ;; esac
case "$DURATION" in ''|*[!0-9]*|0) echo "xdp_flood: --duration $DURATION: expected whole seconds >= 1" >&2; exit 2 ;; esac

HERE=$(cd "$(dirname "$0")" && pwd)
BIN=${OUTPUT:-$HERE}
[ -x "$BIN/sluicectl" ] || BIN=$(pwd)/.output
CTL=$BIN/sluicectl
GEN=$BIN/pktgen
BARE=$BIN/xdp_drop_anchor
for b in "$CTL" "$GEN" "$BARE"; do
	[ -x "$b" ] || { echo "xdp_flood: $b not built (make)" >&2; exit 1; }
done
[ "$(id -u)" = 0 ] || { echo "xdp_flood: needs root (namespaces, XDP)" >&2; exit 1; }
command -v nft >/dev/null || { echo "xdp_flood: nft not installed (apt-get install nftables)" >&2; exit 1; }
if ! mount | grep -q ' /sys/fs/bpf type bpf'; then
	mount -t bpf bpf /sys/fs/bpf
fi

NA=xf$$a NB=xf$$b IA=xfa IB=xfb
SRC=10.77.0.20 DST=10.77.0.2 PORT=8080
PINS=/sys/fs/bpf/sluice-bench-$$
HZ=$(getconf CLK_TCK)

cleanup() {
	nsenter --net=/run/netns/"$NB" "$CTL" --pin-dir "$PINS" detach --iface "$IB" --unpin >/dev/null 2>&1 || true
	ip netns del "$NA" 2>/dev/null || true
	ip netns del "$NB" 2>/dev/null || true
}
trap cleanup EXIT

ip netns add "$NA"
ip netns add "$NB"
ip link add "$IA" netns "$NA" type veth peer name "$IB" netns "$NB"
ip -n "$NA" addr add 10.77.0.1/24 dev "$IA"
ip -n "$NB" addr add "$DST"/24 dev "$IB"
ip -n "$NA" link set "$IA" up
ip -n "$NB" link set "$IB" up
ip -n "$NA" link set lo up
ip -n "$NB" link set lo up
MAC_B=$(ip -n "$NB" -br link show "$IB" | awk '{print $3}')

ctl() { nsenter --net=/run/netns/"$NB" "$CTL" --pin-dir "$PINS" "$@"; }
ctl attach --iface "$IB" --ports "$PORT" >/dev/null
ctl tenant add flood --syn-rate 100 --syn-burst 100 >/dev/null
ctl source add flood "$SRC" >/dev/null
ctl detach --iface "$IB" >/dev/null 2>&1

# CPU ticks used so far by every ksoftirqd thread.
softirqd_ticks() {
	local t=0 p f
	for p in $(pgrep -x 'ksoftirqd/[0-9]+' 2>/dev/null || pgrep ksoftirqd); do
		f=$(cut -d' ' -f14,15 "/proc/$p/stat" 2>/dev/null) || continue
		t=$((t + ${f% *} + ${f#* }))
	done
	echo "$t"
}

xdp_drops() {
	ctl --json stats 2>/dev/null | python3 -c '
import json, sys
s = json.load(sys.stdin)
print(sum(t["verdicts"]["syn_limit"]["packets"] for t in s["tenants"] if t["name"] == "flood"))'
}

# TCP segments the receiving namespace's stack has seen (what got past every filter).
tcp_in_segs() {
	nsenter --net=/run/netns/"$NB" awk '/^Tcp:/ { if (h) { for (i = 1; i <= NF; i++)
		if (n[i] == "InSegs") print $i } else { h = 1; for (i = 1; i <= NF; i++) n[i] = $i } }' \
		/proc/net/snmp
}

nft_drops() {
	nsenter --net=/run/netns/"$NB" nft -j list table "$1" xf 2>/dev/null | python3 -c '
import json, sys
d = json.load(sys.stdin)
print(sum(e["rule"]["expr"][-2]["counter"]["packets"] for e in d["nftables"] if "rule" in e))'
}

setup_mode() {
	case "$1" in
	xdp) ctl attach --iface "$IB" >/dev/null 2>&1 ;;
	bare) nsenter --net=/run/netns/"$NB" "$BARE" attach "$IB" native ;;
	sendonly) ip -n "$NB" link set "$IB" mtu 68 ;;
	nft) nsenter --net=/run/netns/"$NB" nft -f - <<-EOF
		table inet xf {
			chain pre {
				type filter hook prerouting priority -300; policy accept;
				ip saddr $SRC tcp dport $PORT counter drop
			}
		}
		EOF
		;;
	nft-ing) nsenter --net=/run/netns/"$NB" nft -f - <<-EOF
		table netdev xf {
			chain ing {
				type filter hook ingress device $IB priority -500; policy accept;
				ip saddr $SRC tcp dport $PORT counter drop
			}
		}
		EOF
		;;
	esac
}

teardown_mode() {
	case "$1" in
	xdp) ctl detach --iface "$IB" >/dev/null 2>&1 ;;
	bare) nsenter --net=/run/netns/"$NB" "$BARE" detach "$IB" native ;;
	sendonly) ip -n "$NB" link set "$IB" mtu 1500 ;;
	nft) nsenter --net=/run/netns/"$NB" nft delete table inet xf ;;
	nft-ing) nsenter --net=/run/netns/"$NB" nft delete table netdev xf ;;
	esac
}

drops() {
	case "$1" in
	xdp) xdp_drops ;;
	bare|sendonly) echo $(( -$(tcp_in_segs) )) ;; # sent minus what reached TCP, see round()
	nft) nft_drops inet ;;
	nft-ing) nft_drops netdev ;;
	esac
}

PIN_CPU=""
command -v taskset >/dev/null && [ "$(nproc)" -gt 1 ] && PIN_CPU="taskset -c 1"

# One round: prints "pps cpu_s_per_mpkt dropped sent".
round() {
	local mode=$1 d0 d1 k0 k1 out
	setup_mode "$mode"
	d0=$(drops "$mode")
	k0=$(softirqd_ticks)
	out=$(nsenter --net=/run/netns/"$NA" $PIN_CPU "$GEN" --iface "$IA" --dst-mac "$MAC_B" --dst "$DST" \
		--src "$SRC" --dport "$PORT" --payload 100 --duration "${DURATION}s" --batch 64 --json)
	k1=$(softirqd_ticks)
	d1=$(drops "$mode")
	teardown_mode "$mode"
	if [ "$mode" = bare ] || [ "$mode" = sendonly ]; then # nothing counts: sent - seen by TCP
		d1=$((d1 + $(echo "$out" | python3 -c 'import json,sys; r = json.load(sys.stdin); print(r["sent"] + r["refused"])')))
	fi
	python3 - "$out" "$k0" "$k1" "$HZ" "$d0" "$d1" <<-'EOF'
		import json, sys
		r = json.loads(sys.argv[1])
		k0, k1, hz, d0, d1 = (int(x) for x in sys.argv[2:7])
		cpu = r["cpu_user_s"] + r["cpu_sys_s"] + (k1 - k0) / hz
		n = r["sent"] + r["refused"]  # frames handed to the veth (sendonly: all refused)
		print("%.0f %.4f %d %d" % (r["rate_pps"], cpu / (n / 1e6), d1 - d0, n))
	EOF
}

MODES="sendonly xdp bare nft nft-ing"
declare -A PPS CPU
for i in $(seq 1 "$ROUNDS"); do
	for m in $MODES; do
		read -r pps cpu dropped sent < <(round "$m")
		# all but the few SYNs the tenant's credit lets through must have been dropped
		if [ "$dropped" -lt $((sent * 99 / 100 - 100 - 100 * DURATION)) ]; then
			echo "xdp_flood: $m round $i dropped only $dropped of $sent packets" >&2
			exit 1
		fi
		printf '  round %d %-8s %9.0f packets/s  %7.3f CPU s per Mpkt  (%d sent, %d dropped)\n' \
			"$i" "$m" "$pps" "$cpu" "$sent" "$dropped"
		PPS[$m]+="$pps "
		CPU[$m]+="$cpu "
	done
done

median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
declare -A MP MC
for m in $MODES; do
	MP[$m]=$(echo "${PPS[$m]}" | median)
	MC[$m]=$(echo "${CPU[$m]}" | median)
done
echo "xdp_flood: SYN flood from one source, ${DURATION}s per round, median of $ROUNDS rounds"
printf '  %-34s %12s %12s %16s\n' "dropped by" "packets/s" "CPU s/Mpkt" "receive s/Mpkt"
row() {
	awk -v n="$1" -v p="${MP[$2]}" -v c="${MC[$2]}" -v s="${MC[sendonly]}" \
		'BEGIN { printf "  %-34s %12.0f %12.3f %16.3f\n", n, p, c, c - s }'
}
row "Sluice XDP (rate-limited tenant)" xdp
row "bare XDP_DROP program (floor)" bare
row "nftables inet prerouting (anchor)" nft
row "nftables netdev ingress" nft-ing
awk -v p="${MP[sendonly]}" -v c="${MC[sendonly]}" \
	'BEGIN { printf "  %-34s %12.0f %12.3f %16s\n", "nobody (send cost only)", p, c, "-" }'
ratio() {
	awk -v a="$1" -v xp="${MP[xdp]}" -v xc="${MC[xdp]}" -v op="${MP[$2]}" -v oc="${MC[$2]}" \
		-v s="${MC[sendonly]}" 'BEGIN {
		printf "xdp_flood: ratio sluice-xdp/%s: packets/s %.2f, CPU per packet %.2f, " \
		       "receive-side CPU per packet %.2f\n", a, xp / op, xc / oc, (xc - s) / (oc - s)
	}'
}
ratio nft-prerouting nft
ratio nft-ingress nft-ing
ratio bare-xdp-drop bare
