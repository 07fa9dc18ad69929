/** Placeholder of the console page (replaced by the console UI). */
import { render } from 'preact';
render(<p>console</p>, document.getElementById('app')!);
