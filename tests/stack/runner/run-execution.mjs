// Runs one execution of the real ASL file with aws-local-stepfunctions, sending every Lambda Task to
// `cargo lambda watch`'s Invoke API, the way Step Functions would call the deployed functions.
//
//   node run-execution.mjs --definition statemachine/distillery.asl.json \
//        --invoke-url http://127.0.0.1:9000 [--input-file event.json | < event.json] \
//        [--retry-delay-scale 0.01] [--wait-ms N] [--pause-before STATE --resume-file PATH]
//        [--sfn-url http://127.0.0.1:PORT] [--substitution Name=Value ...] [--time-scale F]
//
// --substitution fills a `${Name}` placeholder of the definition (as SAM's DefinitionSubstitutions
// do, as text); `${XFunctionArn}` placeholders need none (they name the local function). A
// placeholder with no value is a usage error; a value no placeholder uses is harmless.
//
// Task states with Resource `arn:aws:states:::lambda:invoke.waitForTaskToken` (Parameters
// {FunctionName, Payload, ...} with `$$.Task.Token` somewhere) run the callback pattern against
// sfn-local (--sfn-url, tests/support/src/sfn_local.rs): each entry of the state (first attempt,
// retry, or re-entry through a Catch) gets a fresh opaque token, registered with sfn-local before
// the function is invoked with the Payload; the Task then waits for SendTaskSuccess (its result is
// the parsed output), SendTaskFailure (fails with Error=error, Cause=cause), or its TimeoutSeconds /
// TimeoutSecondsPath (States.Timeout; default 99999999 s as in AWS) or HeartbeatSeconds /
// HeartbeatSecondsPath (States.HeartbeatTimeout) running out, which sfn-local enforces (so a late
// send gets TaskTimedOut). A failed invocation fails the Task with the function's error, as for a
// Lambda Task. Each token is printed as {"kind":"taskToken","state":...,"taskToken":...}.
//
// --time-scale F (default 1): every Wait state, and every waitForTaskToken timeout and heartbeat
// interval, lasts F times its nominal duration; Lambda Task timeouts stay as they are and retry
// delays follow --retry-delay-scale. --wait-ms, when given, still sets every Wait state's duration.
//
// --pause-before holds the first invocation of that Task state (after printing
// {"kind":"paused","state":...}) until the resume file exists: a test can act between two steps of
// a real execution (e.g. overwrite the upload after validation, before launch). STATE#N holds the
// Nth invocation instead (e.g. ProvisionThroughput#2: after the purchase, before the next check).
//
// Prints one JSON object per line on stdout: every execution event ({"kind":"event",...}) as it
// happens, then {"kind":"result","status":"SUCCEEDED"|"FAILED","output"|"error","cause",
// "transitions":N,"transitionsByState":{"State":n,...}}. Transitions are counted as Step Functions
// bills them: one per state entered (a Catch re-entering a state counts again) plus one per retry.
// Exit status: 0 when the execution ran (whatever its outcome), 2 on bad usage or a broken setup.
import { randomBytes, randomUUID } from 'node:crypto';
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
    // sfn-local's address: needed by waitForTaskToken states.
    'sfn-url': { type: 'string' },
    // Name=Value for a `${Name}` placeholder of the definition; repeatable.
    substitution: { type: 'string', multiple: true, default: [] },
    'time-scale': { type: 'string', default: '1' },
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
const timeScale = Number(args['time-scale']);
if (!Number.isFinite(timeScale) || timeScale < 0) usage(`--time-scale must be a number >= 0, got '${args['time-scale']}'`);
const sfnUrl = args['sfn-url']?.replace(/\/+$/, '');
const substitutions = new Map();
for (const pair of args.substitution) {
  const m = /^([A-Za-z0-9]+)=(.*)$/s.exec(pair);
  if (!m) usage(`--substitution must be Name=Value (Name alphanumeric), got '${pair}'`);
  substitutions.set(m[1], m[2]);
}

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
  if (name.endsWith('FunctionArn')) {
    return `arn:aws:lambda:${args.region}:${args['account-id']}:function:${functionNameFor(name)}`;
  }
  if (substitutions.has(name)) return substitutions.get(name);
  usage(`${args.definition}: no local value for the substitution ${whole} (pass --substitution ${name}=VALUE)`);
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

const [pauseBefore, pauseOccurrenceText] = (args['pause-before'] ?? '').split('#');
const pauseOccurrence = pauseOccurrenceText === undefined ? 1 : Number(pauseOccurrenceText);
if (pauseBefore && !args['resume-file']) usage('--pause-before needs --resume-file <path>');
if (pauseBefore && definition.States?.[pauseBefore]?.Type !== 'Task') usage(`--pause-before ${pauseBefore}: no Task state of that name`);
if (pauseBefore && !(Number.isInteger(pauseOccurrence) && pauseOccurrence >= 1)) usage(`--pause-before ${args['pause-before']}: the occurrence after # must be 1 or more`);
let pausedOnce = false;
let pauseSeen = 0;

async function pauseIfAsked(stateName) {
  if (stateName !== pauseBefore || pausedOnce) return;
  pauseSeen += 1;
  if (pauseSeen < pauseOccurrence) return;
  pausedOnce = true;
  emit({ kind: 'paused', state: stateName });
  while (!existsSync(args['resume-file'])) {
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

function emit(obj) {
  process.stdout.write(`${JSON.stringify(obj)}\n`);
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

// The longest delay setTimeout takes (2^31-1 ms); a longer one fires at once. Given to the library
// as the TimeoutSeconds of the states whose time this runner keeps itself, so its own Task timer
// (60 s when a state has none) never fires first.
const LIBRARY_NEVER_SECONDS = 2147483;
// Step Functions' TimeoutSeconds when a Task has none.
const AWS_DEFAULT_TASK_TIMEOUT_SECONDS = 99999999;
const WAIT_FOR_TASK_TOKEN = 'arn:aws:states:::lambda:invoke.waitForTaskToken';
// What `$$.Task.Token` resolves to while the library evaluates Parameters; each entry of the state
// swaps it for a fresh token in the resolved Payload (see callbackHandler). The library builds the
// context once per execution, so a per-entry value cannot live there.
const TOKEN_PLACEHOLDER = `local-task-token-placeholder-${randomUUID()}`;

// The library's own States.Timeout error class (not exported). Retry/Catch treat an instance of it
// specially (States.TaskFailed does not match it, as in Step Functions), so a callback timeout must
// be thrown as one. Obtained by letting a throwaway one-state machine time out after 1 ms: the
// library reads TimeoutSeconds from the state object when the Task starts.
async function libraryTimeoutErrorClass() {
  const probe = {
    StartAt: 'T',
    States: { T: { Type: 'Task', Resource: 'arn:aws:lambda:us-east-1:123456789012:function:probe', End: true } },
  };
  const run = new StateMachine(probe, { validationOptions: { noValidate: true } }).run(
    {},
    {
      overrides: {
        taskResourceLocalHandlers: {
          T: () => {
            probe.States.T.TimeoutSeconds = 0.001;
            return new Promise(() => {});
          },
        },
      },
    },
  );
  try {
    await run.result;
  } catch (e) {
    if (e.cause?.name === 'States.Timeout') return e.cause.constructor;
  }
  return class extends Error {
    constructor() {
      super('States.Timeout');
      this.name = 'States.Timeout';
    }
  };
}
const StatesTimeoutError = await libraryTimeoutErrorClass();

class TaskFailure extends Error {
  constructor(name, cause) {
    super(cause);
    this.name = name;
  }
}

async function sfnLocal(path, body) {
  let response;
  try {
    response = await fetch(`${sfnUrl}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
  } catch (e) {
    throw new TaskFailure('States.Runtime', `sfn-local at ${sfnUrl}${path} is unreachable: ${e.cause?.message ?? e.message}`);
  }
  const text = await response.text();
  if (!response.ok) throw new TaskFailure('States.Runtime', `sfn-local ${path}: HTTP ${response.status}: ${text}`);
  return text ? JSON.parse(text) : {};
}

// An opaque token shaped like Step Functions' (long base64 text).
function mintToken() {
  return `AQC${randomBytes(180).toString('base64')}`;
}

function replaceToken(value, token) {
  if (typeof value === 'string') return value.split(TOKEN_PLACEHOLDER).join(token);
  if (Array.isArray(value)) return value.map((v) => replaceToken(v, token));
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, replaceToken(v, token)]));
  }
  return value;
}

// `FunctionName` of a lambda:invoke integration: a name, a full or partial ARN, maybe qualified.
function functionNameOf(value) {
  const m = /^(?:arn:aws:lambda:[^:]*:[0-9]*:function:|[0-9]+:function:)?([A-Za-z0-9_-]+)(?::[A-Za-z0-9$_-]+)?$/.exec(value ?? '');
  return m ? m[1] : null;
}

const openTokens = new Set();

function positiveSeconds(stateName, field, value) {
  if (!Number.isInteger(value) || value < 1) {
    throw new TaskFailure('States.Runtime', `state ${stateName}: ${field} must be a positive integer, got ${JSON.stringify(value)}`);
  }
  return value;
}

// The Task handler of a lambda:invoke.waitForTaskToken state.
function callbackHandler(name, state) {
  return async (resolved) => {
    await pauseIfAsked(name);
    const { __localTimeoutSeconds, __localHeartbeatSeconds, FunctionName, Payload, InvocationType } = resolved;
    const functionName = functionNameOf(FunctionName);
    if (!functionName) throw new TaskFailure('States.Runtime', `state ${name}: FunctionName ${JSON.stringify(FunctionName)} is not a Lambda function`);
    const timeoutSeconds =
      state.TimeoutSeconds ?? (state.TimeoutSecondsPath !== undefined
        ? positiveSeconds(name, 'TimeoutSecondsPath', __localTimeoutSeconds)
        : AWS_DEFAULT_TASK_TIMEOUT_SECONDS);
    const heartbeatSeconds =
      state.HeartbeatSeconds ?? (state.HeartbeatSecondsPath !== undefined
        ? positiveSeconds(name, 'HeartbeatSecondsPath', __localHeartbeatSeconds)
        : undefined);
    const token = mintToken();
    const payload = replaceToken(Payload, token);
    // Registered before the function runs: it may send the outcome before it returns.
    await sfnLocal('/local/tasks', {
      taskToken: token,
      timeoutMs: Math.round(timeoutSeconds * 1000 * timeScale),
      heartbeatMs: heartbeatSeconds === undefined ? undefined : Math.round(heartbeatSeconds * 1000 * timeScale),
      execution: context.Execution.Id,
      state: name,
    });
    openTokens.add(token);
    emit({ kind: 'taskToken', state: name, taskToken: token });
    try {
      if (InvocationType === 'Event') {
        // An asynchronous invocation: its function errors never reach the Task.
        invoke(functionName, payload).catch(() => {});
      } else {
        await invoke(functionName, payload);
      }
    } catch (e) {
      await sfnLocal('/local/tasks/close', { taskToken: token }).catch(() => {});
      openTokens.delete(token);
      throw e;
    }
    for (;;) {
      const task = await sfnLocal('/local/tasks/wait', { taskToken: token, waitMs: 20000 });
      if (task.status === 'OPEN') continue;
      openTokens.delete(token);
      switch (task.status) {
        case 'SUCCEEDED':
          return JSON.parse(task.output);
        case 'FAILED':
          throw new TaskFailure(task.error ?? '', task.cause ?? '');
        case 'TIMED_OUT':
          throw new StatesTimeoutError();
        case 'HEARTBEAT_TIMED_OUT':
          throw new TaskFailure('States.HeartbeatTimeout', 'States.HeartbeatTimeout');
        default:
          throw new TaskFailure('States.Runtime', `sfn-local answered an unknown task status ${task.status}`);
      }
    }
  };
}

// A Wait state run as a local timer Task (under --time-scale): Parameters carry the state input
// and its resolved Seconds/SecondsPath/Timestamp/TimestampPath.
function waitTimerHandler(name) {
  return async ({ input, seconds, timestamp }) => {
    let ms;
    if (seconds !== undefined) {
      if (!Number.isInteger(seconds) || seconds < 0) {
        throw new TaskFailure('States.Runtime', `state ${name}: the wait must be an integer >= 0 seconds, got ${JSON.stringify(seconds)}`);
      }
      ms = seconds * 1000;
    } else {
      const at = Date.parse(timestamp);
      if (Number.isNaN(at)) throw new TaskFailure('States.Runtime', `state ${name}: ${JSON.stringify(timestamp)} is not a timestamp`);
      ms = Math.max(0, at - Date.now());
    }
    await sleep(ms * timeScale);
    return input;
  };
}

// The definition given to the library: Wait states under --time-scale become local timer Tasks, and
// waitForTaskToken states keep their timeouts here (the library only sees LIBRARY_NEVER_SECONDS).
const libraryDefinition = structuredClone(definition);
const scaleWaits = args['time-scale'] !== undefined && timeScale !== 1 && args['wait-ms'] === undefined;
const timerWaits = new Set();
const taskResourceLocalHandlers = {};
const retryIntervalOverrides = {};
const waitTimeOverrides = {};
for (const [name, state] of Object.entries(definition.States)) {
  if (state.Type === 'Task' && state.Resource === WAIT_FOR_TASK_TOKEN) {
    if (!sfnUrl) usage(`state ${name} waits for a task token: --sfn-url <sfn-local address> is required`);
    if (!JSON.stringify(state.Parameters ?? {}).includes('$$.Task.Token')) {
      usage(`state ${name}: a waitForTaskToken state must pass $$.Task.Token in its Parameters`);
    }
    const lib = libraryDefinition.States[name];
    lib.Parameters = { ...lib.Parameters };
    if (state.TimeoutSecondsPath !== undefined) lib.Parameters['__localTimeoutSeconds.$'] = state.TimeoutSecondsPath;
    if (state.HeartbeatSecondsPath !== undefined) lib.Parameters['__localHeartbeatSeconds.$'] = state.HeartbeatSecondsPath;
    delete lib.TimeoutSecondsPath;
    delete lib.HeartbeatSeconds;
    delete lib.HeartbeatSecondsPath;
    lib.TimeoutSeconds = LIBRARY_NEVER_SECONDS;
    taskResourceLocalHandlers[name] = callbackHandler(name, state);
  } else if (state.Type === 'Task') {
    const m = /^arn:aws:lambda:[^:]+:[0-9]+:function:([A-Za-z0-9_-]+)$/.exec(state.Resource ?? '');
    if (!m) usage(`state ${name}: Resource ${state.Resource} is not a Lambda function ARN or ${WAIT_FOR_TASK_TOKEN}`);
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
  if (state.Type === 'Wait' && scaleWaits) {
    // One state of the same name and Next/End: one transition, like the Wait it stands for.
    const parameters = { 'input.$': '$' };
    if (state.Seconds !== undefined) parameters.seconds = state.Seconds;
    else if (state.SecondsPath !== undefined) parameters['seconds.$'] = state.SecondsPath;
    else if (state.Timestamp !== undefined) parameters.timestamp = state.Timestamp;
    else if (state.TimestampPath !== undefined) parameters['timestamp.$'] = state.TimestampPath;
    const timer = {
      Type: 'Task',
      Resource: `arn:aws:lambda:${args.region}:${args['account-id']}:function:local-wait-timer`,
      Parameters: parameters,
      TimeoutSeconds: LIBRARY_NEVER_SECONDS,
    };
    for (const key of ['Comment', 'InputPath', 'OutputPath', 'Next', 'End']) {
      if (state[key] !== undefined) timer[key] = state[key];
    }
    libraryDefinition.States[name] = timer;
    timerWaits.add(name);
    taskResourceLocalHandlers[name] = waitTimerHandler(name);
  }
}

const executionName = args['execution-name'] ?? randomUUID();
const context = {
  Execution: {
    Id: `arn:aws:states:${args.region}:${args['account-id']}:execution:distillery-local:${executionName}`,
    Name: executionName,
    Input: input,
    StartTime: new Date().toISOString(),
  },
  Task: { Token: TOKEN_PLACEHOLDER },
};

const machine = new StateMachine(libraryDefinition);
const execution = machine.run(input, {
  overrides: { taskResourceLocalHandlers, retryIntervalOverrides, waitTimeOverrides },
  context,
});

let failedEvent = null;
let transitions = 0;
const transitionsByState = {};
const logging = (async () => {
  for await (const event of execution.eventLogs) {
    if (event.type === 'ExecutionFailed') failedEvent = event;
    // A Wait run as a timer Task is still reported as the Wait it is.
    if (event.state && timerWaits.has(event.state.name)) event.state.type = 'Wait';
    if (event.type === 'StateEntered' || event.type === 'StateRetried') {
      transitions += 1;
      transitionsByState[event.state.name] = (transitionsByState[event.state.name] ?? 0) + 1;
    }
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
// An execution that ended (e.g. its own TimeoutSeconds) while a task waited closes that task, as in
// Step Functions: a later send gets TaskTimedOut, and the waiting handler stops polling.
await Promise.all([...openTokens].map((taskToken) => sfnLocal('/local/tasks/close', { taskToken }).catch(() => {})));
// The thrown error wraps the Fail state's; the ExecutionFailed event carries the Error and Cause
// that Step Functions would report for the execution.
if (result.status === 'FAILED' && failedEvent) {
  result.error = failedEvent.Error;
  result.cause = failedEvent.Cause;
}
result.transitions = transitions;
result.transitionsByState = transitionsByState;
emit(result);
