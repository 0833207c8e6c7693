// Manual check of the test broker with kafkajs 2.2.4 (not part of CTest:
// node and kafkajs are not guaranteed on build machines).
//
//   npm install kafkajs@2.2.4        # in some scratch directory
//   NODE_PATH=<dir>/node_modules node kafkajs_smoke.js 127.0.0.1:PORT
//
// Exercises admin CreateTopics, an idempotent transactional producer
// (commit, abort, sendOffsets), a read_committed group consumer and the
// committed offsets; exits 0 when kafkajs saw exactly the committed data.

'use strict';
const { Kafka, logLevel } = require('kafkajs');

const broker = process.argv[2];
if (!broker) {
  console.error('usage: node kafkajs_smoke.js HOST:PORT');
  process.exit(2);
}
const kafka = new Kafka({ clientId: 'kafkajs-smoke', brokers: [broker], logLevel: logLevel.WARN });
const suffix = `${process.pid}-${Date.now()}`;
const topic = `kjs-${suffix}`;
const input = `kjs-in-${suffix}`;
const group = `kjs-group-${suffix}`;

function check(condition, what) {
  if (!condition) throw new Error(`check failed: ${what}`);
  console.log(`ok: ${what}`);
}

async function main() {
  const admin = kafka.admin();
  await admin.connect();
  check(await admin.createTopics({ topics: [{ topic, numPartitions: 2 }, { topic: input }] }),
        'createTopics created two topics');
  check(!(await admin.createTopics({ topics: [{ topic }] })), 'createTopics again reports existing');

  const producer = kafka.producer({ transactionalId: `kjs-tx-${suffix}`, idempotent: true,
                                    maxInFlightRequests: 1 });
  await producer.connect();
  const committed = [];
  for (let t = 0; t < 3; t++) {
    const txn = await producer.transaction();
    const values = [0, 1, 2, 3].map((i) => `t${t}-m${i}`);
    await txn.send({ topic, messages: values.map((value, i) => ({ value, partition: i % 2 })) });
    if (t === 1) {
      await txn.abort();
    } else {
      await txn.sendOffsets({ consumerGroupId: group, topics: [{ topic: input,
                              partitions: [{ partition: 0, offset: String(10 * (t + 1)) }] }] });
      await txn.commit();
      committed.push(...values);
    }
  }
  const offsets = await admin.fetchOffsets({ groupId: group, topics: [input] });
  check(offsets[0].partitions[0].offset === '30', `sendOffsets committed offset 30 (got ${offsets[0].partitions[0].offset})`);

  const consumer = kafka.consumer({ groupId: `${group}-reader`, maxWaitTimeInMs: 500 });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  const seen = [];
  await consumer.run({ eachMessage: async ({ message }) => { seen.push(message.value.toString()); } });
  const deadline = Date.now() + 20000;
  while (seen.length < committed.length && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 100));
  }
  await new Promise((r) => setTimeout(r, 1500));  // anything aborted would show up now
  check(seen.length === committed.length, `read_committed consumer saw ${seen.length}/${committed.length} records`);
  check(seen.every((v) => !v.startsWith('t1-')), 'no aborted record leaked');
  check([...seen].sort().join() === [...committed].sort().join(), 'exactly the committed records');

  const ends = await admin.fetchTopicOffsets(topic);
  // Each partition: 6 data records (3 txns x 2) + 3 markers.
  check(ends.every((p) => p.high === '9'), `high watermarks include markers (${ends.map((p) => p.high)})`);

  await consumer.disconnect();
  await producer.disconnect();
  await admin.disconnect();
}

main().then(() => { console.log('kafkajs smoke test passed'); process.exit(0); },
            (err) => { console.error(err); process.exit(1); });
