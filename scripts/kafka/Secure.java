// Prepares the secured local broker (scripts/kafka-local, KAFKA_LOCAL_MODE=secured) as its super user: waits until
// the broker answers, creates the topic registry's topics and applies the ACLs derived from it
// (python -m pipeline_common.acls). Run by `java -cp <kafka jars> Secure.java` (a single-file source program: the
// JDK compiles it on the fly, nothing to build). Idempotent: existing topics and ACLs are left as they are.
//
//   java -cp "jars/*" Secure.java <admin properties> <topics file> <acls file> <timeout seconds> <applied acls out>
//
// topics file: one `name partitions key=value...` per line; acls file: one `principal type pattern name operation`;
// the last file receives every ACL the broker holds afterwards, in the acls file's form (what the tests compare).

import java.io.FileReader;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.common.acl.AccessControlEntry;
import org.apache.kafka.common.acl.AclBinding;
import org.apache.kafka.common.acl.AclBindingFilter;
import org.apache.kafka.common.acl.AclOperation;
import org.apache.kafka.common.acl.AclPermissionType;
import org.apache.kafka.common.errors.TopicExistsException;
import org.apache.kafka.common.resource.PatternType;
import org.apache.kafka.common.resource.ResourcePattern;
import org.apache.kafka.common.resource.ResourceType;

public class Secure {
    public static void main(String[] args) throws Exception {
        Properties props = new Properties();
        try (FileReader reader = new FileReader(args[0])) {
            props.load(reader);
        }
        long deadline = System.currentTimeMillis() + Long.parseLong(args[3]) * 1000L;
        try (Admin admin = Admin.create(props)) {
            while (true) {
                try {
                    admin.describeCluster().clusterId().get(5, TimeUnit.SECONDS);
                    break;
                } catch (ExecutionException | TimeoutException e) {
                    if (System.currentTimeMillis() > deadline) {
                        throw new IllegalStateException("the broker did not answer the admin client: " + e.getMessage(), e);
                    }
                    Thread.sleep(500);
                }
            }
            int created = 0;
            for (String line : Files.readAllLines(Path.of(args[1]))) {
                String[] parts = line.trim().split("\\s+");
                if (parts.length < 2) continue;
                Map<String, String> configs = new HashMap<>();
                for (int i = 2; i < parts.length; i++) {
                    String[] kv = parts[i].split("=", 2);
                    configs.put(kv[0], kv[1]);
                }
                NewTopic topic = new NewTopic(parts[0], Integer.parseInt(parts[1]), (short) 1).configs(configs);
                try {
                    admin.createTopics(List.of(topic)).all().get(30, TimeUnit.SECONDS);
                    created++;
                } catch (ExecutionException e) {
                    if (!(e.getCause() instanceof TopicExistsException)) throw e;
                }
            }
            List<AclBinding> bindings = new ArrayList<>();
            for (String line : Files.readAllLines(Path.of(args[2]))) {
                String[] parts = line.trim().split("\\s+");
                if (parts.length != 5) continue;
                ResourcePattern resource = new ResourcePattern(
                    ResourceType.valueOf(parts[1].toUpperCase(Locale.ROOT)), parts[3],
                    PatternType.valueOf(parts[2].toUpperCase(Locale.ROOT)));
                AccessControlEntry entry = new AccessControlEntry(
                    parts[0], "*", AclOperation.valueOf(parts[4].toUpperCase(Locale.ROOT)), AclPermissionType.ALLOW);
                bindings.add(new AclBinding(resource, entry));
            }
            admin.createAcls(bindings).all().get(30, TimeUnit.SECONDS);
            // The broker's authorizer applies new ACLs from the metadata log a moment after the controller has them.
            List<String> applied = new ArrayList<>();
            while (true) {
                applied.clear();
                for (AclBinding binding : admin.describeAcls(AclBindingFilter.ANY).values().get(30, TimeUnit.SECONDS)) {
                    String operation = binding.entry().operation().name();
                    applied.add(String.join(" ", binding.entry().principal(),
                        binding.pattern().resourceType().name().toLowerCase(Locale.ROOT),
                        binding.pattern().patternType().name().toLowerCase(Locale.ROOT), binding.pattern().name(),
                        operation.charAt(0) + operation.substring(1).toLowerCase(Locale.ROOT),
                        binding.entry().permissionType().name(), binding.entry().host()));
                }
                if (applied.size() >= bindings.size() || System.currentTimeMillis() > deadline) break;
                Thread.sleep(200);
            }
            applied.sort(null);
            Files.write(Path.of(args[4]), applied);
            System.out.println("topics created: " + created + "; ACLs on the broker: " + applied.size());
        }
    }
}
