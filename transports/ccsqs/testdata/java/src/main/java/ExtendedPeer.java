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
import software.amazon.awssdk.services.sqs.SqsClient;
import software.amazon.awssdk.services.sqs.model.Message;
import software.amazon.awssdk.services.sqs.model.MessageAttributeValue;

/**
 * AWS's Java SQS extended client (amazon-sqs-java-extended-client-lib) as a test peer:
 * {@code send} sends a large message with the client's defaults (2.x sends the legacy
 * SQSLargePayloadSize attribute with the new pointer class) and a small one through S3 with
 * ExtendedPayloadSize; {@code receive N} receives N messages and prints what it got as JSON
 * lines, deleting them; {@code handles N} prints the receipt handles it hands its application,
 * deleting nothing. Endpoints and credentials come from the environment the Go test sets.
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
    String queue = env("QUEUE_URL");
    String bucket = env("BUCKET");
    SqsClient sqs = new AmazonSQSExtendedClient(raw,
        new ExtendedClientConfiguration().withPayloadSupportEnabled(s3, bucket, false));
    switch (args[0]) {
      case "send" -> {
        sqs.sendMessage(b -> b.queueUrl(queue).messageBody("j".repeat(300000))
            .messageAttributes(Map.of("from", str("java-big"))));
        SqsClient always = new AmazonSQSExtendedClient(raw, new ExtendedClientConfiguration()
            .withPayloadSupportEnabled(s3, bucket, false)
            .withAlwaysThroughS3(true)
            .withLegacyReservedAttributeNameDisabled());
        always.sendMessage(b -> b.queueUrl(queue).messageBody("small via s3 from java")
            .messageAttributes(Map.of("from", str("java-small"))));
      }
      case "receive", "handles" -> {
        boolean delete = args[0].equals("receive");
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
