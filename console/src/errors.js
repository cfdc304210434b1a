// An API error as the console shows it: SSM's code and message as the API
// gave them, and what to do next.

const NEXT = {
  AccessDeniedException:
    "Your access key's policy does not allow this. Ask an administrator to grant it (steward keys, or aws iam put-user-policy), then try again.",
  UnrecognizedClientException: "The access key is not known to this Steward. Sign in with another key.",
  InvalidSignatureException: "The secret does not match the access key. Sign in again with the right secret.",
  ExpiredTokenException: "The credentials have expired. Sign in again.",
  ThrottlingException: "Steward is busy. Wait a moment and try again.",
  InternalServerError: "Steward failed to answer. Try again; if it persists, look at the api function's log.",
  InvalidInstanceId: "The node is not registered, or is not online. Check its ping status on the fleet page.",
  ParameterNotFound: "No parameter has this name. Check the name and its path in the tree.",
  InvalidDocument: "No document has this name, or it is not shared with you. Pick one from the Documents page.",
  ValidationException: "A value is not accepted. Correct the field the message names and send again.",
  NetworkError: "Steward's API did not answer. Check your connection, or that the stack is running.",
  InvalidAutomationSignalException:
    "Only the step's approvers may approve or reject it, and only while it waits. Sign in with an approver's key, or ask an approver.",
  AutomationExecutionNotFoundException: "No execution has this id. Pick one from the Automation page.",
  InvalidAutomationStatusUpdateException: "The execution has ended, or is being stopped already: nothing is left to stop.",
  InvalidCommandId: "No command has this id. Pick one from the Commands page.",
  ParameterAlreadyExists: "A parameter has this name already. Edit it instead (Overwrite), or choose another name.",
  InvalidDocumentContent: "The content is not a valid document. Correct what the message names and create it again.",
  DocumentAlreadyExists: "A document has this name already. Choose another name, or add a version to it.",
};

export class ApiError extends Error {
  constructor(code, message, status) {
    super(message || code);
    this.code = code;
    this.status = status;
  }

  get next() {
    return NEXT[this.code] || "Correct what the message says and try again.";
  }
}

// Any error from the SDK (or the network) as an ApiError.
export function asApiError(e) {
  if (e instanceof ApiError) return e;
  const status = e?.$metadata?.httpStatusCode;
  if (!status && (e?.name === "TypeError" || /fetch|network/i.test(e?.message || ""))) {
    return new ApiError("NetworkError", e.message, undefined);
  }
  return new ApiError(e?.name || e?.Code || "Error", e?.message || String(e), status);
}
