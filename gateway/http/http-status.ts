/**
 * The HTTP status of a refusal, by its error code: one table for every HTTP answer of the gateway
 * (the console's API, and the way into embedded Node-RED).
 */
import type { ErrorCode } from '../errors.js';

export function statusOf(code: ErrorCode): number {
  switch (code) {
    case 'LF_ERR_NOT_SIGNED_IN':
    case 'LF_ERR_BAD_CREDENTIALS':
      return 401;
    case 'LF_ERR_CSRF':
    case 'LF_ERR_SCOPE':
    case 'LF_ERR_NOT_ON_DUTY':
    case 'LF_ERR_EDITOR_LOCAL':
      return 403;
    case 'LF_ERR_NOT_FOUND':
    case 'LF_ERR_UNKNOWN_ALARM':
      return 404;
    case 'LF_ERR_TAKEN':
    case 'LF_ERR_BAD_TRANSITION':
    case 'LF_ERR_FAULT_ACTIVE':
    case 'LF_ERR_TICKET_CLOSED':
      return 409;
    case 'LF_ERR_LOGIN_THROTTLED':
      return 429;
    case 'LF_ERR_NODE_RED_DOWN':
      return 503;
    default:
      return 400;
  }
}
