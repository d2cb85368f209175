#!/usr/bin/env python3
"""The Python side of the AMQP benchmark: publishes the same message bodies the Rust
forwarder publishes (one JSON body per line of --bodies) with pika's publisher
confirms (BlockingChannel.confirm_delivery: each basic_publish waits for its confirm),
same properties, same exchange and routing keys. Prints one JSON line with the figures.
"""
import argparse
import json
import time

import pika


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True)
    ap.add_argument("--exchange", required=True)
    ap.add_argument("--bodies", required=True)
    args = ap.parse_args()
    with open(args.bodies, "rb") as f:
        bodies = [line.rstrip(b"\n") for line in f if line.strip()]
    messages = []
    for b in bodies:
        e = json.loads(b)
        messages.append((e["routing_key"], e["id"], b))

    connection = pika.BlockingConnection(pika.URLParameters(args.url))
    channel = connection.channel()
    channel.exchange_declare(exchange=args.exchange, exchange_type="topic", durable=True)
    channel.confirm_delivery()
    start = time.perf_counter()
    for routing_key, message_id, body in messages:
        channel.basic_publish(
            exchange=args.exchange,
            routing_key=routing_key,
            body=body,
            properties=pika.BasicProperties(
                content_type="application/json",
                delivery_mode=2,
                message_id=message_id,
                app_id="vaultkeeper",
                timestamp=int(time.time()),
            ),
        )
    secs = time.perf_counter() - start
    connection.close()
    print(json.dumps({"messages": len(messages), "seconds": secs, "per_second": len(messages) / secs}))


if __name__ == "__main__":
    main()
