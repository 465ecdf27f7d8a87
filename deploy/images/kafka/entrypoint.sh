#!/bin/sh
# Start a single-node KRaft broker in the foreground (tini forwards SIGTERM; Kafka shuts down cleanly on it).
# The same configuration as scripts/kafka-local, written from the environment at every start.
set -eu

port="${KAFKA_PORT:-9092}"
controller_port="${KAFKA_CONTROLLER_PORT:-$((port + 1))}"
listen_host="${KAFKA_LISTEN_HOST:-0.0.0.0}"
advertised_host="${KAFKA_ADVERTISED_HOST:-127.0.0.1}"
heap="${KAFKA_HEAP:-512m}"
data_dir="/var/lib/kafka/data"
config="/tmp/server.properties"
classpath="/opt/kafka/libs/*"
logging="-Dlog4j2.configurationFile=/opt/kafka/log4j2.yaml"

cat >"$config" <<CONFIG
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$controller_port
listeners=PLAINTEXT://$listen_host:$port,CONTROLLER://$listen_host:$controller_port
advertised.listeners=PLAINTEXT://$advertised_host:$port
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs=$data_dir
num.partitions=1
default.replication.factor=1
min.insync.replicas=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=8
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=false
delete.topic.enable=true
log.retention.hours=24
log.segment.bytes=16777216
CONFIG

if [ ! -f "$data_dir/meta.properties" ]; then
  cluster_id="$(java -cp "$classpath" "$logging" kafka.tools.StorageTool random-uuid 2>/dev/null | tail -n 1)"
  java -cp "$classpath" "$logging" kafka.tools.StorageTool format --ignore-formatted \
    --cluster-id "$cluster_id" --config "$config"
fi
echo "kafka-image: starting Apache Kafka ${KAFKA_VERSION:-?} on $listen_host:$port (advertised $advertised_host:$port)"
exec java "-Xms$heap" "-Xmx$heap" -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -Djava.awt.headless=true \
  "$logging" -cp "$classpath" kafka.Kafka "$config"
