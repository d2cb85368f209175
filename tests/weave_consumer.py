#!/usr/bin/env python3
"""A consumer written the way the original Weave-NN design wrote one.

pika, a blocking connection, a durable topic exchange, a queue bound to `file.*.md`,
a callback reading `event`, `file_path` and `content`. For the test suite it prints
one JSON line per message (and {"ready": true} once bound) and exits after --count
messages (status 0) or after --timeout seconds without them (status 2).
"""
import argparse
import json
import os
import sys

import pika


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", default=os.environ.get("RABBITMQ_URL", "amqp://guest:guest@localhost:5672/%2F"))
    parser.add_argument("--exchange", default="weave-nn.events")
    parser.add_argument("--queue", required=True)
    parser.add_argument("--binding", default="file.*.md")
    parser.add_argument("--count", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=30.0)
    args = parser.parse_args()

    connection = pika.BlockingConnection(pika.URLParameters(args.url))
    channel = connection.channel()
    channel.exchange_declare(exchange=args.exchange, exchange_type="topic", durable=True)
    # Exclusive: the queue goes away with this process.
    channel.queue_declare(queue=args.queue, exclusive=True)
    channel.queue_bind(exchange=args.exchange, queue=args.queue, routing_key=args.binding)
    channel.basic_qos(prefetch_count=10)
    print(json.dumps({"ready": True}), flush=True)

    state = {"received": 0, "timed_out": False}

    def on_message(ch, method, properties, body):
        message = json.loads(body)
        event_type = message["event"]
        file_path = message["file_path"]
        content = message.get("content")
        print(json.dumps({
            "event": event_type,
            "file_path": file_path,
            "content": content,
            "routing_key": method.routing_key,
            "message_id": properties.message_id,
            "content_type": properties.content_type,
        }), flush=True)
        ch.basic_ack(delivery_tag=method.delivery_tag)
        state["received"] += 1
        if state["received"] >= args.count:
            ch.stop_consuming()

    def on_timeout():
        state["timed_out"] = True
        channel.stop_consuming()

    connection.call_later(args.timeout, on_timeout)
    channel.basic_consume(queue=args.queue, on_message_callback=on_message)
    channel.start_consuming()
    connection.close()
    if state["timed_out"]:
        print("timed out after %d of %d messages" % (state["received"], args.count), file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
