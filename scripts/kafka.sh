#!/usr/bin/env bash
# scripts/kafka.sh: a throwaway Apache Kafka broker for tests (KRaft, one
# node that is broker and controller, on loopback).
#
#   scripts/kafka.sh install     fetch the pinned Kafka server jars from Maven
#                                Central into .cache/kafka/VERSION/libs (mvn;
#                                Java 17 and Maven from Debian when missing);
#                                idempotent
#   scripts/kafka.sh start DIR   write DIR/server.properties (free loopback
#                                ports, logs under DIR), format the storage
#                                with a fresh cluster id, start the broker in
#                                the background, wait until it answers (at
#                                most KAFKA_START_TIMEOUT seconds, default 90),
#                                write DIR/pid and print 127.0.0.1:<port>
#   scripts/kafka.sh stop DIR    stop the broker started in DIR and wait for it
#
#   With KAFKA_SECURE=1, start also opens a SASL_SSL listener: TLS with a
#   certificate for 127.0.0.1 signed by a throwaway CA (DIR/tls/ca.pem) and
#   SCRAM-SHA-256/512 logins for user streamrec (password in DIR/secure.env,
#   which also names the listener: KAFKA_SECURE_ADDR, KAFKA_CA_FILE,
#   KAFKA_SCRAM_USER, KAFKA_SCRAM_PASSWORD).
#   scripts/kafka.sh with CMD...  start a broker in a temporary folder, run CMD
#                                with STREAMREC_TEST_KAFKA=<its address> (and
#                                STREAMREC_TEST_KAFKA_SECURE=<its secure.env>
#                                with KAFKA_SECURE=1), stop
#                                it and remove the folder; exits with CMD's status
#
# Progress and errors go to stderr, so `addr=$(scripts/kafka.sh start d)`
# captures only the address. A broker already running from DIR is refused:
# a second broker on the same log dir corrupts its metadata log.
set -euo pipefail

VERSION=${KAFKA_VERSION:-4.1.1}
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
home="$root/.cache/kafka/$VERSION"

die() { echo "kafka.sh: $*" >&2; exit 1; }
# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

cmd_install() {
	[ -f "$home/libs/.complete" ] && return 0
	if ! command -v java >/dev/null 2>&1 || ! command -v mvn >/dev/null 2>&1; then
		echo "kafka.sh: installing Java 17 and Maven (apt-get)" >&2
		export DEBIAN_FRONTEND=noninteractive
		as_root apt-get install -y -qq openjdk-17-jre-headless maven >&2 ||
			{ as_root apt-get update -qq >&2 && as_root apt-get install -y -qq openjdk-17-jre-headless maven >&2; }
	fi
	mkdir -p "$home"
	# A pom-packaging project whose only job is to copy the server's jars:
	# Kafka's server and tools (without Kafka Connect, which they would drag
	# in) and a logger binding for the slf4j 1.7 API its clients use.
	cat >"$home/pom.xml" <<EOF
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>streamrec</groupId>
  <artifactId>kafka-test-broker</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka_2.13</artifactId><version>$VERSION</version></dependency>
    <dependency>
      <groupId>org.apache.kafka</groupId><artifactId>kafka-tools</artifactId><version>$VERSION</version>
      <exclusions><exclusion><groupId>org.apache.kafka</groupId><artifactId>connect-runtime</artifactId></exclusion></exclusions>
    </dependency>
    <dependency><groupId>org.slf4j</groupId><artifactId>slf4j-simple</artifactId><version>1.7.36</version></dependency>
  </dependencies>
</project>
EOF
	echo "kafka.sh: fetching Kafka $VERSION from Maven Central into $home/libs" >&2
	local start=$SECONDS
	rm -rf "$home/libs"
	(cd "$home" && mvn -q -B dependency:copy-dependencies -DoutputDirectory=libs >&2) || die "mvn could not fetch Kafka $VERSION"
	ls "$home"/libs/kafka_2.13-"$VERSION".jar >/dev/null 2>&1 || die "no kafka_2.13-$VERSION.jar in $home/libs"
	touch "$home/libs/.complete"
	echo "kafka.sh: $(ls "$home/libs" | wc -l) jars in $((SECONDS - start)) s" >&2
}

# secure_setup DIR PORT writes a throwaway CA, a server certificate for
# 127.0.0.1 and localhost (key and chain in one PEM file, as Kafka's PEM
# keystore wants) and DIR/secure.env.
secure_setup() {
	local dir=$1 port=$2 tls=$1/tls
	test_tls "$tls"
	# Kafka's PEM keystore: an unencrypted PKCS#8 key, then the chain.
	openssl pkcs8 -topk8 -nocrypt -in "$tls/server.key" >"$tls/server.pem"
	cat "$tls/server.crt" "$tls/ca.pem" >>"$tls/server.pem"
	cat >"$dir/secure.env" <<EOF
KAFKA_SECURE_ADDR=127.0.0.1:$port
KAFKA_CA_FILE=$tls/ca.pem
KAFKA_SCRAM_USER=streamrec
KAFKA_SCRAM_PASSWORD=$(openssl rand -hex 12)
EOF
}

java_cp() { java -Xmx256m -cp "$home/libs/*" "$@"; }

cmd_start() {
	local dir=${1:-}
	[ -n "$dir" ] || die "usage: kafka.sh start DIR"
	[ -f "$home/libs/.complete" ] || die "Kafka $VERSION is not installed (run: scripts/kafka.sh install)"
	mkdir -p "$dir"
	dir=$(cd "$dir" && pwd)
	if running "$dir"; then
		die "a broker already runs from $dir (pid $(cat "$dir/pid")); a second one would corrupt its metadata log"
	fi
	local port cport sport
	{ read -r port && read -r cport && read -r sport; } < <(free_ports 3)
	mkdir -p "$dir/data" "$dir/log"
	local listeners="PLAINTEXT://127.0.0.1:$port" protocols="PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT" scram=()
	if [ "${KAFKA_SECURE:-}" = 1 ]; then
		secure_setup "$dir" "$sport"
		listeners="$listeners,SASL_SSL://127.0.0.1:$sport"
		protocols="$protocols,SASL_SSL:SASL_SSL"
		local pw
		pw=$(sed -n 's/^KAFKA_SCRAM_PASSWORD=//p' "$dir/secure.env")
		scram=(--add-scram "SCRAM-SHA-256=[name=\"streamrec\",password=\"$pw\"]" --add-scram "SCRAM-SHA-512=[name=\"streamrec\",password=\"$pw\"]")
	fi
	cat >"$dir/server.properties" <<EOF
process.roles=broker,controller
node.id=1
controller.quorum.bootstrap.servers=127.0.0.1:$cport
listeners=$listeners,CONTROLLER://127.0.0.1:$cport
advertised.listeners=$listeners
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
listener.security.protocol.map=$protocols
log.dirs=$dir/data
num.partitions=3
offsets.topic.replication.factor=1
offsets.topic.num.partitions=3
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=true
EOF
	if [ "${KAFKA_SECURE:-}" = 1 ]; then
		cat >>"$dir/server.properties" <<EOF
sasl.enabled.mechanisms=SCRAM-SHA-256,SCRAM-SHA-512
listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
ssl.keystore.type=PEM
ssl.keystore.location=$dir/tls/server.pem
EOF
	fi
	# stdout only: random-uuid logs a line on stderr that must not become
	# part of the id.
	local id
	id=$(java_cp kafka.tools.StorageTool random-uuid 2>/dev/null | tail -n 1)
	[ -n "$id" ] || die "no cluster id from StorageTool random-uuid"
	java_cp kafka.tools.StorageTool format -t "$id" -c "$dir/server.properties" --standalone "${scram[@]}" >"$dir/log/format.log" 2>&1 ||
		{ tail -n 20 "$dir/log/format.log" >&2; die "formatting the storage in $dir/data failed"; }

	# Started directly (not from a subshell) so that $! is the JVM's pid;
	# setsid keeps a terminal's Ctrl-C away from it.
	setsid java -Xmx512m -Xms128m -XX:+UseG1GC -cp "$home/libs/*" kafka.Kafka "$dir/server.properties" \
		>>"$dir/log/server.log" 2>&1 </dev/null &
	local pid=$!
	echo "$pid" >"$dir/pid"

	local timeout=${KAFKA_START_TIMEOUT:-90}
	local deadline=$((SECONDS + timeout)) start=$SECONDS
	until port_open "$port" && grep -q "Kafka Server started\|KafkaServer id=1\] started\|Transitioning from RECOVERY to RUNNING\|BrokerServer id=1\] Transition from STARTING to STARTED" "$dir/log/server.log" 2>/dev/null; do
		if ! kill -0 "$pid" 2>/dev/null; then
			tail -n 30 "$dir/log/server.log" >&2
			rm -f "$dir/pid"
			die "the broker exited during start (log $dir/log/server.log)"
		fi
		if [ "$SECONDS" -ge "$deadline" ]; then
			kill "$pid" 2>/dev/null || true
			rm -f "$dir/pid"
			die "the broker did not start within ${timeout}s (log $dir/log/server.log)"
		fi
		sleep 0.2
	done
	echo "kafka.sh: Kafka $VERSION on 127.0.0.1:$port (pid $pid) in $((SECONDS - start)) s" >&2
	echo "127.0.0.1:$port"
}

cmd_stop() {
	local dir=${1:-}
	[ -n "$dir" ] || die "usage: kafka.sh stop DIR"
	stop_server "$dir" 30
}

cmd_with() {
	[ $# -gt 0 ] || die "usage: kafka.sh with CMD..."
	local addr rc=0
	with_dir=$(mktemp -d "${TMPDIR:-/tmp}/streamrec-kafka.XXXXXX")
	trap 'cmd_stop "$with_dir/k"; rm -rf "$with_dir"' EXIT
	addr=$(cmd_start "$with_dir/k")
	local secure=""
	[ -f "$with_dir/k/secure.env" ] && secure="$with_dir/k/secure.env"
	STREAMREC_TEST_KAFKA=$addr STREAMREC_TEST_KAFKA_SECURE=$secure "$@" || rc=$?
	return "$rc"
}

case "${1:-}" in
install) cmd_install ;;
start) cmd_start "${2:-}" ;;
stop) cmd_stop "${2:-}" ;;
with) shift; cmd_with "$@" ;;
*) die "usage: kafka.sh install | start DIR | stop DIR | with CMD..." ;;
esac
