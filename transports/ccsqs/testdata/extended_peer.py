"""AWS's Python SQS extended client (amazon-sqs-extended-client) as a test
peer: `send` sends a large message and, in always-through-S3 mode, a small
one; `send-legacy` does the same in the legacy pointer format, under keys
set with the S3Key attribute; `receive` receives N messages and prints what it got as JSON lines;
`handles` receives N messages and prints the receipt handles it hands its
application, deleting nothing.
Endpoints and credentials come from the environment the Go test sets."""
import hashlib
import json
import os
import sys

import boto3
import botocore.config
import sqs_extended_client  # noqa: F401  (patches boto3's session)


def clients():
    sqs = boto3.client(
        "sqs",
        endpoint_url=os.environ["SQS_ENDPOINT"],
        region_name=os.environ["AWS_DEFAULT_REGION"],
        aws_access_key_id=os.environ["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=os.environ["AWS_SECRET_ACCESS_KEY"],
    )
    sqs.large_payload_support = os.environ["BUCKET"]
    sqs.s3_client = boto3.client(
        "s3",
        endpoint_url=os.environ["S3_ENDPOINT"],
        region_name="us-east-1",
        aws_access_key_id=os.environ["S3_ACCESS_KEY"],
        aws_secret_access_key=os.environ["S3_SECRET_KEY"],
        config=botocore.config.Config(s3={"addressing_style": "path"}),
    )
    return sqs


def main():
    sqs = clients()
    queue = os.environ["QUEUE_URL"]
    if sys.argv[1] == "send":
        big = "p" * 300000
        sqs.send_message(QueueUrl=queue, MessageBody=big,
                         MessageAttributes={"from": {"DataType": "String", "StringValue": "python-big"}})
        sqs.always_through_s3 = True
        sqs.send_message(QueueUrl=queue, MessageBody="small via s3",
                         MessageAttributes={"from": {"DataType": "String", "StringValue": "python-small"}})
        return
    if sys.argv[1] == "send-legacy":
        # The legacy pointer (SQSLargePayloadSize, MessageS3Pointer), under
        # keys of the producer's choosing (the S3Key attribute).
        sqs.use_legacy_attribute = True
        sqs.send_message(QueueUrl=queue, MessageBody="l" * 300000,
                         MessageAttributes={"from": {"DataType": "String", "StringValue": "legacy-big"},
                                            "S3Key": {"DataType": "String", "StringValue": "custom/prefix/legacy-big"}})
        sqs.always_through_s3 = True
        sqs.send_message(QueueUrl=queue, MessageBody="legacy small",
                         MessageAttributes={"from": {"DataType": "String", "StringValue": "legacy-small"},
                                            "S3Key": {"DataType": "String", "StringValue": "custom/prefix/legacy-small"}})
        return
    want = int(sys.argv[2])
    got = 0
    if sys.argv[1] == "handles":
        # Receive and print the receipt handles the extended client hands
        # its application, without deleting anything.
        for _ in range(20):
            out = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, WaitTimeSeconds=1,
                                      VisibilityTimeout=60, MessageAttributeNames=["All"])
            for m in out.get("Messages", []):
                print(json.dumps({"handle": m["ReceiptHandle"], "len": len(m["Body"].encode())}))
                got += 1
            if got >= want:
                return
        sys.exit("received %d of %d messages" % (got, want))
    for _ in range(20):
        out = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, WaitTimeSeconds=1,
                                  MessageAttributeNames=["All"])
        for m in out.get("Messages", []):
            body = m["Body"]
            attrs = {k: v.get("StringValue") for k, v in m.get("MessageAttributes", {}).items()}
            print(json.dumps({"len": len(body.encode()), "sha256": hashlib.sha256(body.encode()).hexdigest(),
                              "attrs": attrs}))
            sqs.delete_message(QueueUrl=queue, ReceiptHandle=m["ReceiptHandle"])
            got += 1
        if got >= want:
            return
    sys.exit("received %d of %d messages" % (got, want))


if __name__ == "__main__":
    main()
