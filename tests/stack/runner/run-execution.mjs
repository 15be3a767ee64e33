// Runs one execution of the real ASL file with aws-local-stepfunctions, sending every Lambda Task to
// `cargo lambda watch`'s Invoke API, the way Step Functions would call the deployed functions.
//
//   node run-execution.mjs --definition statemachine/distillery.asl.json \
//        --invoke-url http://127.0.0.1:9000 [--input-file event.json | < event.json] \
//        [--retry-delay-scale 0.01] [--wait-ms N] [--pause-before STATE --resume-file PATH]
//
// --pause-before holds the first invocation of that Task state (after printing
// {"kind":"paused","state":...}) until the resume file exists: a test can act between two steps of
// a real execution (e.g. overwrite the upload after validation, before launch).
//
// Prints one JSON object per line on stdout: every execution event ({"kind":"event",...}) as it
// happens, then {"kind":"result","status":"SUCCEEDED"|"FAILED","output"|"error","cause"}.
// Exit status: 0 when the execution ran (whatever its outcome), 2 on bad usage or a broken setup.
import { randomUUID } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { StateMachine } from 'aws-local-stepfunctions';

const { values: args } = parseArgs({
  options: {
    definition: { type: 'string' },
    'invoke-url': { type: 'string' },
    'input-file': { type: 'string' },
    // Retry delays are multiplied by this (the retrier's IntervalSeconds, capped by MaxDelaySeconds).
    'retry-delay-scale': { type: 'string', default: '0.01' },
    // When given, every Wait state waits this many ms instead of its Seconds/SecondsPath.
    'wait-ms': { type: 'string' },
    'pause-before': { type: 'string' },
    'resume-file': { type: 'string' },
    'account-id': { type: 'string', default: '123456789012' },
    // The execution's name (its id is the execution ARN, as $$.Execution.Id gives it); a fresh
    // UUID when not given, as Step Functions names an execution started without one.
    'execution-name': { type: 'string' },
    // Fault injection (tests only): the first invocation of this Task state runs the function for
    // real, then its response is lost and the Task fails with Lambda.ServiceException, as when a
    // function times out or its sandbox dies after its writes. The state's Retry then runs it again.
    'lose-first-response-of': { type: 'string' },
    region: { type: 'string', default: 'us-east-1' },
  },
});

function usage(message) {
  process.stderr.write(`run-execution: ${message}\n`);
  process.exit(2);
}

if (!args.definition) usage('--definition <file.asl.json> is required');
if (!args['invoke-url']) usage('--invoke-url <http://127.0.0.1:PORT> is required (cargo lambda watch)');
const invokeUrl = args['invoke-url'].replace(/\/+$/, '');
const retryScale = Number(args['retry-delay-scale']);
if (!Number.isFinite(retryScale) || retryScale < 0) usage(`--retry-delay-scale must be a number >= 0, got '${args['retry-delay-scale']}'`);

// `${DatasetValidatorFunctionArn}` -> `dataset-validator`: the SAM logical id without `FunctionArn`,
// in kebab case, which is the binary name cargo lambda watch serves.
function functionNameFor(substitution) {
  const logical = substitution.replace(/FunctionArn$/, '');
  return logical.replace(/([a-z0-9])([A-Z])/g, '$1-$2').toLowerCase();
}

let text;
try {
  text = readFileSync(args.definition, 'utf8');
} catch (e) {
  usage(`cannot read the definition ${args.definition}: ${e.message}`);
}
const substituted = text.replace(/\$\{([A-Za-z0-9]+)\}/g, (whole, name) => {
  if (!name.endsWith('FunctionArn')) usage(`${args.definition}: no local value for the substitution ${whole}`);
  return `arn:aws:lambda:${args.region}:${args['account-id']}:function:${functionNameFor(name)}`;
});
let definition;
try {
  definition = JSON.parse(substituted);
} catch (e) {
  usage(`${args.definition} is not valid JSON: ${e.message}`);
}

let input;
try {
  const raw = args['input-file'] ? readFileSync(args['input-file'], 'utf8') : readFileSync(0, 'utf8');
  input = JSON.parse(raw);
} catch (e) {
  usage(`the execution input is not valid JSON: ${e.message}`);
}

// A function error, shaped as Step Functions shapes it for a Lambda Task: the error name is the
// function's errorType (what Retry/Catch match) and the cause is the function's error payload as JSON.
class LambdaFunctionError extends Error {
  constructor(errorType, payload) {
    super(JSON.stringify(payload));
    this.name = errorType;
  }
}

async function invoke(functionName, payload) {
  const url = `${invokeUrl}/2015-03-31/functions/${encodeURIComponent(functionName)}/invocations`;
  let response;
  try {
    response = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(payload),
    });
  } catch (e) {
    // The Lambda service could not be reached: what the AWS SDK reports as a client-side fault.
    throw new LambdaFunctionError('Lambda.SdkClientException', {
      errorType: 'Lambda.SdkClientException',
      errorMessage: `cannot reach ${url}: ${e.cause?.message ?? e.message}`,
    });
  }
  const body = await response.text();
  let parsed = null;
  try {
    parsed = body.length ? JSON.parse(body) : null;
  } catch {
    parsed = null;
  }
  const functionError = response.headers.get('x-amz-function-error');
  if (response.ok && !functionError) return parsed;
  if (parsed && typeof parsed === 'object' && typeof parsed.errorType === 'string') {
    throw new LambdaFunctionError(parsed.errorType, parsed);
  }
  throw new LambdaFunctionError('Lambda.ServiceException', {
    errorType: 'Lambda.ServiceException',
    errorMessage: `${functionName}: HTTP ${response.status}: ${body.slice(0, 500)}`,
  });
}

const pauseBefore = args['pause-before'];
if (pauseBefore && !args['resume-file']) usage('--pause-before needs --resume-file <path>');
if (pauseBefore && definition.States?.[pauseBefore]?.Type !== 'Task') usage(`--pause-before ${pauseBefore}: no Task state of that name`);
let pausedOnce = false;

async function pauseIfAsked(stateName) {
  if (stateName !== pauseBefore || pausedOnce) return;
  pausedOnce = true;
  emit({ kind: 'paused', state: stateName });
  while (!existsSync(args['resume-file'])) {
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

const taskResourceLocalHandlers = {};
const retryIntervalOverrides = {};
const waitTimeOverrides = {};
for (const [name, state] of Object.entries(definition.States)) {
  if (state.Type === 'Task') {
    const m = /^arn:aws:lambda:[^:]+:[0-9]+:function:([A-Za-z0-9_-]+)$/.exec(state.Resource ?? '');
    if (!m) usage(`state ${name}: Resource ${state.Resource} is not a Lambda function ARN`);
    const functionName = m[1];
    let responsesToLose = args['lose-first-response-of'] === name ? 1 : 0;
    taskResourceLocalHandlers[name] = async (taskInput) => {
      await pauseIfAsked(name);
      const output = await invoke(functionName, taskInput);
      if (responsesToLose > 0) {
        responsesToLose -= 1;
        throw new LambdaFunctionError('Lambda.ServiceException', {
          errorType: 'Lambda.ServiceException',
          errorMessage: `${functionName}: response lost after the function ran (injected by --lose-first-response-of)`,
        });
      }
      return output;
    };
  }
  if (Array.isArray(state.Retry)) {
    retryIntervalOverrides[name] = state.Retry.map((r) =>
      Math.round(Math.min(r.IntervalSeconds ?? 1, r.MaxDelaySeconds ?? Infinity) * 1000 * retryScale),
    );
  }
  if (state.Type === 'Wait' && args['wait-ms'] !== undefined) {
    waitTimeOverrides[name] = Number(args['wait-ms']);
  }
}

function emit(obj) {
  process.stdout.write(`${JSON.stringify(obj)}\n`);
}

const executionName = args['execution-name'] ?? randomUUID();
const context = {
  Execution: {
    Id: `arn:aws:states:${args.region}:${args['account-id']}:execution:distillery-local:${executionName}`,
    Name: executionName,
    Input: input,
    StartTime: new Date().toISOString(),
  },
};

const machine = new StateMachine(definition);
const execution = machine.run(input, {
  overrides: { taskResourceLocalHandlers, retryIntervalOverrides, waitTimeOverrides },
  context,
});

let failedEvent = null;
const logging = (async () => {
  for await (const event of execution.eventLogs) {
    if (event.type === 'ExecutionFailed') failedEvent = event;
    emit({ kind: 'event', ...event });
  }
})();

let result;
try {
  const output = await execution.result;
  result = { kind: 'result', status: 'SUCCEEDED', output };
} catch (e) {
  result = { kind: 'result', status: 'FAILED', error: e.name, cause: String(e.message) };
}
await logging;
// The thrown error wraps the Fail state's; the ExecutionFailed event carries the Error and Cause
// that Step Functions would report for the execution.
if (result.status === 'FAILED' && failedEvent) {
  result.error = failedEvent.Error;
  result.cause = failedEvent.Cause;
}
emit(result);
