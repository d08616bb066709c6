"""AWS's Python SNS extended client (amazon-sns-extended-client) as a test
peer: publishes a large message and, in always-through-S3 mode, a small
one to TOPIC_ARN. Endpoints and credentials come from the environment the
Go test sets."""
import os

import boto3
import botocore.config
import sns_extended_client  # noqa: F401  (patches boto3's session)


def main():
    sns = boto3.client(
        "sns",
        endpoint_url=os.environ["SQS_ENDPOINT"],
        region_name=os.environ["AWS_DEFAULT_REGION"],
        aws_access_key_id=os.environ["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=os.environ["AWS_SECRET_ACCESS_KEY"],
    )
    sns.large_payload_support = os.environ["BUCKET"]
    sns.s3_client = boto3.client(
        "s3",
        endpoint_url=os.environ["S3_ENDPOINT"],
        region_name="us-east-1",
        aws_access_key_id=os.environ["S3_ACCESS_KEY"],
        aws_secret_access_key=os.environ["S3_SECRET_KEY"],
        config=botocore.config.Config(s3={"addressing_style": "path"}),
    )
    topic = os.environ["TOPIC_ARN"]
    sns.publish(TopicArn=topic, Message="s" * 300000,
                MessageAttributes={"from": {"DataType": "String", "StringValue": "python-big"}})
    sns.always_through_s3 = True
    sns.publish(TopicArn=topic, Message="small via s3",
                MessageAttributes={"from": {"DataType": "String", "StringValue": "python-small"}})


if __name__ == "__main__":
    main()
