/** Shifts: sign on, hand over, who is on duty (helper: shifts). */
import type { Route } from './api.js';

export const SHIFT_ROUTES: Route[] = [];
