// The console's entry: routes the URL fragment (#/functions, #/function/NAME, #/cluster,
// #/workflows, #/run/ID, #/providers, #/streams, #/login) to a page, and sends the user
// back to the login page whenever the node refuses the token (expired, revoked, unknown).

import { token, clearToken } from './api.js';
import * as pages from './pages.js';

const routes = {
  login: pages.loginPage,
  functions: pages.functionsPage,
  function: pages.functionPage,
  cluster: pages.clusterPage,
  workflows: pages.workflowsPage,
  run: pages.runPage,
  providers: pages.providersPage,
  streams: pages.streamsPage,
};

let stop = () => {};
let loginMessage = '';

function render() {
  const view = document.getElementById('view');
  const parts = location.hash.replace(/^#\/?/, '').split('/').map(decodeURIComponent);
  let page = parts[0] || 'functions';
  if (!routes[page]) page = 'notfound';
  if (!token() && page !== 'login') { location.hash = '#/login'; return; }
  stop();
  stop = () => {};
  document.body.dataset.page = page;
  for (const a of document.querySelectorAll('#nav a')) a.classList.toggle('active', a.dataset.page === page);
  if (page === 'notfound') {
    view.replaceChildren(pages.h('p', { class: 'error' }, `No page ${location.hash}.`));
    return;
  }
  stop = routes[page](view, parts.slice(1), page === 'login' ? loginMessage : undefined) || (() => {});
  if (page === 'login') loginMessage = '';
}

window.addEventListener('tern-bad-token', (ev) => {
  clearToken();
  loginMessage = `${ev.detail} Log in again.`;
  if (location.hash === '#/login') render(); else location.hash = '#/login';
});
window.addEventListener('hashchange', render);
document.getElementById('logout').addEventListener('click', () => {
  clearToken();
  location.hash = '#/login';
});
render();
