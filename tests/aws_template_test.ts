/**
 * The AWS deployment template (`deploy/aws/template.yaml`): valid CloudFormation per `cfn-lint` (PyPI,
 * pinned in `.ci/run`; the test is skipped with a message where it is not installed), and the promises
 * docs/deploy.md makes about it, read from the text: provided.al2023 on arm64 or x86_64, a Function URL,
 * a bucket with a lifecycle rule, and a role that may only put objects under its prefix and write its logs.
 */
import assert from "node:assert/strict";

const TEMPLATE = new URL("../deploy/aws/template.yaml", import.meta.url);
const text = Deno.readTextFileSync(TEMPLATE);

async function cfnLintVersion(): Promise<string | undefined> {
  try {
    const out = await new Deno.Command("cfn-lint", { args: ["--version"], stdout: "piped", stderr: "null" })
      .output();
    return out.success ? new TextDecoder().decode(out.stdout).trim() : undefined;
  } catch {
    return undefined;
  }
}

const version = await cfnLintVersion();
if (version === undefined) {
  console.warn("cfn-lint is not installed (pip install cfn-lint): the template's validation is skipped");
}

Deno.test({
  name: "deploy/aws/template.yaml passes cfn-lint",
  ignore: version === undefined,
  fn: async () => {
    const out = await new Deno.Command("cfn-lint", {
      args: ["--format", "parseable", TEMPLATE.pathname],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const report = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
    assert.equal(out.code, 0, `${version}:\n${report}`);
  },
});

Deno.test("deploy/aws/template.yaml: provided.al2023 on either CPU, a Function URL, a lifecycle rule", () => {
  assert.match(text, /^\s+Runtime: provided\.al2023$/m);
  assert.match(text, /^\s+Handler: bootstrap$/m);
  assert.match(text, /^\s+AllowedValues: \[arm64, x86_64\]$/m);
  assert.match(text, /^\s+Architectures: \[!Ref Architecture\]$/m);
  assert.match(text, /Type: AWS::Lambda::Url\n\s+Properties:\n(?:\s+.*\n)*?\s+AuthType: !Ref UrlAuthType/);
  assert.match(text, /^\s+AllowedValues: \[NONE, AWS_IAM\]$/m);
  assert.match(text, /LifecycleConfiguration:\n(?:\s+.*\n)*?\s+ExpirationInDays: !Ref RetentionDays/);
  // A public URL runs with a token; an IAM one says on purpose that the function checks none.
  assert.match(text, /OTLP2PARQUET_AUTH: !If \[PublicUrl, !Ref AWS::NoValue, none\]/);
  assert.match(text, /OTLP2PARQUET_AUTH_TOKEN: !If/);
  assert.match(text, /AuthToken:\n(?:\s+.*\n)*?\s+NoEcho: true/);
});

Deno.test("deploy/aws/template.yaml: the role may put objects under the prefix and write logs, nothing else", () => {
  const actions = [...text.matchAll(/^\s+Action: (.+)$/gm)].map((m) => m[1]);
  const granted = actions.filter((a) => !a.startsWith("sts:") && !a.startsWith("lambda:"));
  assert.deepEqual(granted, ["s3:PutObject", "[logs:CreateLogStream, logs:PutLogEvents]"]);
  assert.match(text, /Action: s3:PutObject\n\s+Resource: !Sub "\$\{DataBucket\.Arn\}\/\$\{DataPrefix\}\/\*"/);
  assert.doesNotMatch(text, /Action: ["']?\*|s3:\*|Resource: ["']?\*["']?$/m);
  assert.doesNotMatch(text, /ManagedPolicyArns/);
});
