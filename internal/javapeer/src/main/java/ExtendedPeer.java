import com.amazon.sqs.javamessaging.AmazonSQSExtendedClient;
import com.amazon.sqs.javamessaging.ExtendedClientConfiguration;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.util.HexFormat;
import java.util.Map;
import java.util.TreeMap;
import software.amazon.awssdk.auth.credentials.AwsBasicCredentials;
import software.amazon.awssdk.auth.credentials.StaticCredentialsProvider;
import software.amazon.awssdk.regions.Region;
import software.amazon.awssdk.services.s3.S3Client;
import software.amazon.awssdk.services.sns.SnsClient;
import software.amazon.sns.AmazonSNSExtendedClient;
import software.amazon.sns.SNSExtendedClientConfiguration;
import software.amazon.awssdk.services.sqs.SqsClient;
import software.amazon.awssdk.services.sqs.model.Message;
import software.amazon.awssdk.services.sqs.model.MessageAttributeValue;

/**
 * AWS's Java extended clients as test peers. SQS (amazon-sqs-java-extended-client-lib, on
 * QUEUE_URL): {@code sqs-send} sends a large message with the client's defaults (2.x sends the
 * legacy SQSLargePayloadSize attribute with the new pointer class) and a small one through S3
 * with ExtendedPayloadSize; {@code sqs-receive N} receives N messages and prints what it got as
 * JSON lines, deleting them; {@code sqs-handles N} prints the receipt handles it hands its
 * application, deleting nothing. SNS (sns-extended-client, on TOPIC_ARN): {@code sns-publish}
 * publishes a large message and a small one through S3. Endpoints and credentials come from the
 * environment the Go test sets.
 */
public final class ExtendedPeer {
  private static String env(String name) {
    String v = System.getenv(name);
    if (v == null) {
      throw new IllegalStateException(name + " not set");
    }
    return v;
  }

  private static MessageAttributeValue str(String v) {
    return MessageAttributeValue.builder().dataType("String").stringValue(v).build();
  }

  private static software.amazon.awssdk.services.sns.model.MessageAttributeValue snsStr(String v) {
    return software.amazon.awssdk.services.sns.model.MessageAttributeValue.builder()
        .dataType("String").stringValue(v).build();
  }

  private static String quote(String s) {
    StringBuilder b = new StringBuilder("\"");
    for (char c : s.toCharArray()) {
      if (c == '"' || c == '\\') {
        b.append('\\').append(c);
      } else if (c < 0x20) {
        b.append(String.format("\\u%04x", (int) c));
      } else {
        b.append(c);
      }
    }
    return b.append('"').toString();
  }

  public static void main(String[] args) throws Exception {
    S3Client s3 = S3Client.builder()
        .endpointOverride(URI.create(env("S3_ENDPOINT")))
        .region(Region.US_EAST_1)
        .forcePathStyle(true)
        .credentialsProvider(StaticCredentialsProvider.create(
            AwsBasicCredentials.create(env("S3_ACCESS_KEY"), env("S3_SECRET_KEY"))))
        .build();
    SqsClient raw = SqsClient.builder()
        .endpointOverride(URI.create(env("SQS_ENDPOINT")))
        .region(Region.of(env("AWS_DEFAULT_REGION")))
        .credentialsProvider(StaticCredentialsProvider.create(
            AwsBasicCredentials.create(env("AWS_ACCESS_KEY_ID"), env("AWS_SECRET_ACCESS_KEY"))))
        .build();
    String bucket = env("BUCKET");
    if (args[0].equals("sns-publish")) {
      SnsClient rawSns = SnsClient.builder()
          .endpointOverride(URI.create(env("SQS_ENDPOINT")))
          .region(Region.of(env("AWS_DEFAULT_REGION")))
          .credentialsProvider(StaticCredentialsProvider.create(
              AwsBasicCredentials.create(env("AWS_ACCESS_KEY_ID"), env("AWS_SECRET_ACCESS_KEY"))))
          .build();
      String topic = env("TOPIC_ARN");
      SnsClient sns = new AmazonSNSExtendedClient(rawSns,
          new SNSExtendedClientConfiguration().withPayloadSupportEnabled(s3, bucket));
      sns.publish(b -> b.topicArn(topic).message("n".repeat(300000))
          .messageAttributes(Map.of("from", snsStr("java-big"))));
      SnsClient always = new AmazonSNSExtendedClient(rawSns, new SNSExtendedClientConfiguration()
          .withPayloadSupportEnabled(s3, bucket).withAlwaysThroughS3(true));
      always.publish(b -> b.topicArn(topic).message("small via s3 from java")
          .messageAttributes(Map.of("from", snsStr("java-small"))));
      return;
    }
    String queue = env("QUEUE_URL");
    SqsClient sqs = new AmazonSQSExtendedClient(raw,
        new ExtendedClientConfiguration().withPayloadSupportEnabled(s3, bucket, false));
    switch (args[0]) {
      case "sqs-send" -> {
        sqs.sendMessage(b -> b.queueUrl(queue).messageBody("j".repeat(300000))
            .messageAttributes(Map.of("from", str("java-big"))));
        SqsClient always = new AmazonSQSExtendedClient(raw, new ExtendedClientConfiguration()
            .withPayloadSupportEnabled(s3, bucket, false)
            .withAlwaysThroughS3(true)
            .withLegacyReservedAttributeNameDisabled());
        always.sendMessage(b -> b.queueUrl(queue).messageBody("small via s3 from java")
            .messageAttributes(Map.of("from", str("java-small"))));
      }
      case "sqs-receive", "sqs-handles" -> {
        boolean delete = args[0].equals("sqs-receive");
        int want = Integer.parseInt(args[1]);
        int got = 0;
        for (int i = 0; i < 20 && got < want; i++) {
          for (Message m : sqs.receiveMessage(b -> b.queueUrl(queue).maxNumberOfMessages(10)
              .waitTimeSeconds(1).visibilityTimeout(60).messageAttributeNames("All")).messages()) {
            byte[] body = m.body().getBytes(StandardCharsets.UTF_8);
            if (delete) {
              Map<String, String> attrs = new TreeMap<>();
              m.messageAttributes().forEach((k, v) -> attrs.put(k, v.stringValue()));
              StringBuilder a = new StringBuilder("{");
              attrs.forEach((k, v) -> a.append(a.length() > 1 ? "," : "").append(quote(k)).append(':')
                  .append(v == null ? "null" : quote(v)));
              String sum = HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(body));
              System.out.println("{\"len\":" + body.length + ",\"sha256\":\"" + sum + "\",\"attrs\":" + a + "}}");
              sqs.deleteMessage(b -> b.queueUrl(queue).receiptHandle(m.receiptHandle()));
            } else {
              System.out.println("{\"handle\":" + quote(m.receiptHandle()) + ",\"len\":" + body.length + "}");
            }
            got++;
          }
        }
        if (got < want) {
          System.err.println("received " + got + " of " + want + " messages");
          System.exit(1);
        }
      }
      default -> throw new IllegalArgumentException("unknown command " + args[0]);
    }
  }
}
