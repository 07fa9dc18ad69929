/** Statistics, the alarms CSV and the daily bulletin. */
import type { Route } from './api.js';

export const REPORT_ROUTES: Route[] = [];
