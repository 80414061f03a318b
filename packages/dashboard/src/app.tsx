/**
 * The dashboard: sign-in with the admin token, then one overview per app built entirely from the app's
 * catalog (its outcomes and funnels pick the panels) and the filters in the URL.
 */
import { useEffect, useMemo, useState } from 'preact/hooks';
import {
  type AdoptionResponse,
  ApiError,
  type AppsResponse,
  apiGet,
  type BreakdownResponse,
  type ErrorDetailResponse,
  type ErrorsResponse,
  type FunnelResponse,
  type HealthResponse,
  type InstallsResponse,
  type OutcomesResponse,
  type OverviewResponse,
  type RetentionResponse,
  storedToken,
  storeToken,
  type TrendsResponse,
} from './api.js';
import { Adoption, Retention } from './components/adoption.js';
import { Breakdown } from './components/breakdown.js';
import { ErrorDetail, Errors } from './components/errors.js';
import { Filters } from './components/filters.js';
import { Funnel } from './components/funnel.js';
import { Headline } from './components/headline.js';
import { Health } from './components/health.js';
import { Outcomes } from './components/outcomes.js';
import { SignIn } from './components/sign-in.js';
import { ActiveInstalls, Trends } from './components/trends.js';
import { cycleTheme, type ThemeChoice, themeChoice } from './theme.js';
import { offersTrait, traitChoices } from './trait-choices.js';
import { filterParams, traitDimension, traitOf, useViewState, type ViewState } from './url-state.js';
import { type Session, SessionContext, useView } from './use-view.js';

export function App() {
  const [token, setToken] = useState<string | null>(() => storedToken());
  const [apps, setApps] = useState<AppsResponse | null>(null);
  const [message, setMessage] = useState<string | undefined>(undefined);

  const signOut = (note?: string): void => {
    storeToken(null);
    setToken(null);
    setApps(null);
    setMessage(note);
  };

  useEffect(() => {
    if (!token || apps) return;
    apiGet<AppsResponse>('apps', {}, token).then(setApps, (error: unknown) => {
      if (error instanceof ApiError && error.status === 401)
        signOut('Your session has expired; sign in again.');
      else setMessage(error instanceof Error ? error.message : String(error));
    });
  }, [token, apps]);

  const session: Session = useMemo(
    () => ({
      token: token ?? '',
      onUnauthorized: () => signOut('The admin token was not accepted; sign in again.'),
    }),
    [token],
  );

  if (!token)
    return (
      <SignIn
        {...(message ? { message } : {})}
        onSignedIn={(value, list) => {
          storeToken(value);
          setMessage(undefined);
          setApps(list);
          setToken(value);
        }}
      />
    );
  if (!apps)
    return (
      <main id="main" class="loading-page">
        <p class={message ? 'error-note' : 'loading'} role={message ? 'alert' : 'status'}>
          {message ?? 'Loading…'}
        </p>
      </main>
    );
  return (
    <SessionContext.Provider value={session}>
      <Dashboard apps={apps} onSignOut={() => signOut()} />
    </SessionContext.Provider>
  );
}

function Dashboard(props: { readonly apps: AppsResponse; readonly onSignOut: () => void }) {
  const [state, navigate] = useViewState();
  const [theme, setTheme] = useState<ThemeChoice>(themeChoice());
  const appInfo = props.apps.apps.find((a) => a.name === state.app) ?? props.apps.apps[0];

  useEffect(() => {
    if (appInfo && state.app !== appInfo.name) navigate({ app: appInfo.name }, { replace: true });
  }, [appInfo?.name, state.app]);

  useEffect(() => {
    document.title = appInfo ? `${appInfo.title} · Telemark` : 'Telemark';
  }, [appInfo?.title]);

  if (!appInfo)
    return (
      <main id="main" class="loading-page">
        <p class="empty">No apps are registered with this collector. Add one to its config file.</p>
      </main>
    );

  return (
    <>
      <a class="skip-link" href="#main">
        Skip to the dashboard
      </a>
      <header class="top">
        <div class="brand">
          <span class="logo" aria-hidden="true">
            ▚
          </span>
          <span>Telemark</span>
        </div>
        {props.apps.apps.length > 1 ? (
          <div class="field inline">
            <label for="app-select">App</label>
            <select
              id="app-select"
              value={appInfo.name}
              onChange={(e) =>
                navigate({
                  app: (e.currentTarget as HTMLSelectElement).value,
                  versions: [],
                  os: [],
                  error: null,
                })
              }
            >
              {props.apps.apps.map((a) => (
                <option key={a.name} value={a.name}>
                  {a.title}
                </option>
              ))}
            </select>
          </div>
        ) : null}
        <div class="top-actions">
          <button
            type="button"
            onClick={() => setTheme(cycleTheme())}
            aria-label={`Colour theme: ${theme}. Change theme`}
            title="Change colour theme"
          >
            {theme === 'dark' ? '☾ Dark' : theme === 'light' ? '☀ Light' : '◐ Auto'}
          </button>
          <button type="button" onClick={props.onSignOut}>
            Sign out
          </button>
        </div>
      </header>
      <Overview
        key={appInfo.name}
        state={{ ...state, app: appInfo.name }}
        navigate={navigate}
        appTitle={appInfo.title}
        catalog={appInfo.catalog}
      />
    </>
  );
}

function Overview(props: {
  readonly state: ViewState;
  readonly navigate: ReturnType<typeof useViewState>[1];
  readonly appTitle: string;
  readonly catalog: AppsResponse['apps'][number]['catalog'];
}) {
  const { state, navigate, catalog } = props;
  const params = filterParams(state);
  const unfiltered = { ...params, version: undefined, os: undefined };
  const funnels = Object.entries(catalog.funnels ?? {});
  const choices = useMemo(() => traitChoices(catalog), [catalog]);
  // A trait breakdown this app's catalog does not offer (a link from another app) shows the OS tab.
  const trait = traitOf(state.dimension);
  const byTrait =
    trait !== null && state.breakdownEvent !== null && offersTrait(choices, state.breakdownEvent, trait);
  const dimension = byTrait || trait === null ? state.dimension : 'os_name';
  const breakdownEvent = byTrait ? state.breakdownEvent : null;

  const overview = useView<OverviewResponse>('overview', params);
  const trends = useView<TrendsResponse>('trends', params);
  const installs = useView<InstallsResponse>('installs', params);
  const outcomes = useView<OutcomesResponse>('outcomes', { ...params, breakdown: 'os_name' });
  const errors = useView<ErrorsResponse>('errors', { ...params, limit: '20' });
  const errorDetail = useView<ErrorDetailResponse>(
    state.error ? `errors/${encodeURIComponent(state.error)}` : null,
    params,
  );
  const breakdown = useView<BreakdownResponse>('breakdown', {
    ...params,
    dimension,
    event: breakdownEvent ?? undefined,
  });
  const adoption = useView<AdoptionResponse>('adoption', params);
  const retention = useView<RetentionResponse>('retention', { ...params, weeks: '8' });
  const health = useView<HealthResponse>('health', params);
  const versionOptions = useView<BreakdownResponse>('breakdown', { ...unfiltered, dimension: 'app_version' });
  const osOptions = useView<BreakdownResponse>('breakdown', { ...unfiltered, dimension: 'os_name' });

  return (
    <main id="main" tabIndex={-1}>
      <h1 class="page-title">{props.appTitle}</h1>
      <Filters
        state={state}
        navigate={navigate}
        options={{
          versions: versionOptions.status === 'ready' ? versionOptions.data : undefined,
          os: osOptions.status === 'ready' ? osOptions.data : undefined,
        }}
      />
      <div class="panels">
        <Headline result={overview} />
        {state.error ? (
          <ErrorDetail
            fingerprint={state.error}
            result={errorDetail}
            onClose={() => navigate({ error: null })}
          />
        ) : null}
        <Trends result={trends} interval={state.interval} />
        <ActiveInstalls result={installs} interval={state.interval} />
        <Outcomes result={outcomes} catalog={catalog} interval={state.interval} />
        {funnels.map(([name, spec]) => (
          <FunnelPanel
            key={name}
            name={name}
            title={spec.title}
            {...(spec.description ? { description: spec.description } : {})}
            params={params}
          />
        ))}
        <Errors
          result={errors}
          open={state.error}
          onOpen={(fingerprint) => {
            navigate({ error: fingerprint });
            scrollTo({ top: 0 });
          }}
        />
        <Breakdown
          result={breakdown}
          dimension={dimension}
          event={breakdownEvent}
          traitChoices={choices}
          onDimension={(d) => navigate({ dimension: d, breakdownEvent: null })}
          onTrait={(event, name) => navigate({ dimension: traitDimension(name), breakdownEvent: event })}
        />
        <Adoption result={adoption} />
        <Retention result={retention} />
        <Health result={health} interval={state.interval} />
      </div>
    </main>
  );
}

function FunnelPanel(props: {
  readonly name: string;
  readonly title: string;
  readonly description?: string;
  readonly params: ReturnType<typeof filterParams>;
}) {
  const result = useView<FunnelResponse>('funnel', { ...props.params, funnel: props.name });
  return (
    <Funnel
      id={props.name}
      title={props.title}
      {...(props.description ? { description: props.description } : {})}
      result={result}
    />
  );
}
