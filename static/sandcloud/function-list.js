// The functions page: the AWS CLI command beside the "Create function" form follows what the learner types.
const form = document.getElementById("create-form");
const cli = document.getElementById("create-cli");

function quoted(value) {
  return /^[A-Za-z0-9_-]+$/.test(value) ? value : `'${value.replace(/'/g, "'\\''")}'`;
}

function cliUpdate() {
  const name = form.elements.name.value.trim() || "my-function";
  const memory = form.elements.memory_size.value.trim() || "128";
  const timeout = form.elements.timeout.value.trim() || "3";
  const role = `arn:aws:iam::${cli.dataset.accountId}:role/lab`;
  cli.textContent = "zip function.zip lambda_function.py\n" +
    `aws lambda create-function --function-name ${quoted(name)} --runtime python3.11 \\\n` +
    `  --handler lambda_function.lambda_handler --role ${role} \\\n` +
    `  --memory-size ${quoted(memory)} --timeout ${quoted(timeout)} --zip-file fileb://function.zip`;
}

if (form && cli) {
  form.addEventListener("input", cliUpdate);
}
