/** Device health and maintenance tickets. */
import type { Route } from './api.js';

export const HEALTH_ROUTES: Route[] = [];
