/**
 * The dimensions and metrics the fake knows, with the value sets it draws
 * dimension values from and the types Google reports for each metric.
 */
import { weekday } from './dates.js';

export type MetricType = 'TYPE_INTEGER' | 'TYPE_FLOAT' | 'TYPE_SECONDS' | 'TYPE_CURRENCY';

export interface DimensionDef {
  apiName: string;
  uiName: string;
  category: string;
  /** Values to draw from, most frequent first. */
  values?: readonly string[];
  /** Dimensions computed from the date (one value per day). */
  derive?: (date: string) => string;
  /** Queries with it are subject to thresholding (demographics). */
  thresholded?: boolean;
  custom?: boolean;
  deprecatedApiNames?: string[];
}

interface MetricDef {
  apiName: string;
  uiName: string;
  type: MetricType;
  category: string;
  description: string;
  deprecatedApiNames?: string[];
}

const WEEKDAYS = ['Sunday', 'Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday'];

const PAGES = [
  '/',
  '/pricing',
  '/blog',
  '/docs',
  '/docs/getting-started',
  '/docs/api',
  '/docs/faq',
  '/about',
  '/contact',
  '/careers',
  '/signup',
  '/login',
  '/blog/ga4-migration',
  '/blog/server-side-tagging',
  '/blog/consent-mode',
  '/blog/bigquery-export',
  '/blog/looker-studio-tips',
  '/blog/attribution-models',
  '/products',
  '/products/starter',
  '/products/team',
  '/products/enterprise',
  '/cart',
  '/checkout',
  '/checkout/thank-you',
  '/search',
  '/support',
  '/support/tickets',
  '/changelog',
  '/legal/privacy',
  '/legal/terms',
  '/partners',
  '/events',
  '/webinars/ga4-basics',
  '/case-studies',
  '/case-studies/acme',
];

const STATIC: DimensionDef[] = [
  { apiName: 'date', uiName: 'Date', category: 'Time', derive: (d) => d.replaceAll('-', '') },
  { apiName: 'dayOfWeek', uiName: 'Day of week', category: 'Time', derive: (d) => String(weekday(d)) },
  { apiName: 'dayOfWeekName', uiName: 'Day of week name', category: 'Time', derive: (d) => WEEKDAYS[weekday(d)] ?? '' },
  { apiName: 'month', uiName: 'Month', category: 'Time', derive: (d) => d.slice(5, 7) },
  { apiName: 'year', uiName: 'Year', category: 'Time', derive: (d) => d.slice(0, 4) },
  { apiName: 'yearMonth', uiName: 'Year month', category: 'Time', derive: (d) => d.slice(0, 4) + d.slice(5, 7) },
  {
    apiName: 'country',
    uiName: 'Country',
    category: 'Geography',
    values: [
      'United States',
      'India',
      'United Kingdom',
      'Germany',
      'Canada',
      'France',
      'Brazil',
      'Japan',
      'Australia',
      'Spain',
      'Netherlands',
      "Côte d'Ivoire",
      '(not set)',
    ],
  },
  {
    apiName: 'city',
    uiName: 'City',
    category: 'Geography',
    values: [
      '(not set)',
      'New York',
      'London',
      'Bengaluru',
      'San Francisco',
      'Berlin',
      'Toronto',
      'Paris',
      'Chicago',
      'Mumbai',
      'Sao Paulo',
      'Tokyo',
      'Sydney',
      'Madrid',
      'Amsterdam',
      'Seattle',
      'Austin',
      'Munich',
      'Los Angeles',
      'Manchester',
      'Vancouver',
      'Lyon',
      'Osaka',
      'Melbourne',
      'Abidjan',
    ],
  },
  { apiName: 'deviceCategory', uiName: 'Device category', category: 'Platform / Device', values: ['desktop', 'mobile', 'tablet', 'smart tv'] },
  {
    apiName: 'sessionSource',
    uiName: 'Session source',
    category: 'Traffic Source',
    values: [
      'google',
      '(direct)',
      'bing',
      'newsletter',
      'facebook.com',
      'linkedin.com',
      't.co',
      'duckduckgo',
      'github.com',
      'reddit.com',
      'yahoo',
      'chatgpt.com',
    ],
  },
  {
    apiName: 'sessionMedium',
    uiName: 'Session medium',
    category: 'Traffic Source',
    values: ['organic', '(none)', 'referral', 'cpc', 'email', 'social', '(not set)'],
  },
  {
    apiName: 'sessionDefaultChannelGroup',
    uiName: 'Session default channel group',
    category: 'Traffic Source',
    values: ['Organic Search', 'Direct', 'Referral', 'Paid Search', 'Email', 'Organic Social', 'Unassigned', 'Cross-network'],
    deprecatedApiNames: ['sessionDefaultChannelGrouping'],
  },
  { apiName: 'pagePath', uiName: 'Page path', category: 'Page / Screen', values: PAGES },
  { apiName: 'landingPage', uiName: 'Landing page', category: 'Page / Screen', values: ['(not set)', ...PAGES.slice(0, 20)] },
  {
    apiName: 'browser',
    uiName: 'Browser',
    category: 'Platform / Device',
    values: ['Chrome', 'Safari', 'Edge', 'Firefox', 'Samsung Internet', 'Android Webview', 'Opera', '(not set)'],
  },
  {
    apiName: 'operatingSystem',
    uiName: 'Operating system',
    category: 'Platform / Device',
    values: ['Windows', 'iOS', 'Android', 'Macintosh', 'Linux', 'Chrome OS', '(not set)'],
  },
  {
    apiName: 'language',
    uiName: 'Language',
    category: 'Demographics',
    values: ['English', 'Spanish', 'German', 'French', 'Portuguese', 'Japanese', 'Hindi', 'Dutch', '(not set)'],
  },
  {
    apiName: 'eventName',
    uiName: 'Event name',
    category: 'Event',
    values: [
      'page_view',
      'user_engagement',
      'session_start',
      'scroll',
      'first_visit',
      'click',
      'view_search_results',
      'form_start',
      'file_download',
      'form_submit',
      'purchase',
    ],
  },
  { apiName: 'hostName', uiName: 'Hostname', category: 'Page / Screen', values: ['www.example.com', 'example.com', 'shop.example.com', 'docs.example.com'] },
  {
    apiName: 'userAgeBracket',
    uiName: 'Age',
    category: 'Demographics',
    thresholded: true,
    values: ['unknown', '25-34', '35-44', '18-24', '45-54', '55-64', '65+'],
  },
  { apiName: 'userGender', uiName: 'Gender', category: 'Demographics', thresholded: true, values: ['unknown', 'male', 'female'] },
];

const DIMENSIONS = new Map(STATIC.map((d) => [d.apiName, d]));

const CUSTOM = /^(customEvent|customUser):([A-Za-z][A-Za-z0-9_]{0,39})$/;

const METRICS: MetricDef[] = [
  { apiName: 'sessions', uiName: 'Sessions', type: 'TYPE_INTEGER', category: 'Session', description: 'The number of sessions that began on your site or app.' },
  {
    apiName: 'totalUsers',
    uiName: 'Total users',
    type: 'TYPE_INTEGER',
    category: 'User',
    description: 'The number of distinct users who logged at least one event.',
  },
  {
    apiName: 'activeUsers',
    uiName: 'Active users',
    type: 'TYPE_INTEGER',
    category: 'User',
    description: 'The number of distinct users who visited your site or app.',
  },
  {
    apiName: 'newUsers',
    uiName: 'New users',
    type: 'TYPE_INTEGER',
    category: 'User',
    description: 'The number of users who interacted with your site or launched your app for the first time.',
  },
  {
    apiName: 'screenPageViews',
    uiName: 'Views',
    type: 'TYPE_INTEGER',
    category: 'Page / Screen',
    description: 'The number of app screens or web pages your users viewed.',
  },
  { apiName: 'eventCount', uiName: 'Event count', type: 'TYPE_INTEGER', category: 'Event', description: 'The count of events.' },
  {
    apiName: 'engagedSessions',
    uiName: 'Engaged sessions',
    type: 'TYPE_INTEGER',
    category: 'Session',
    description: 'The number of sessions that lasted longer than 10 seconds, or had a key event, or had 2 or more screen views.',
  },
  {
    apiName: 'keyEvents',
    uiName: 'Key events',
    type: 'TYPE_FLOAT',
    category: 'Event',
    description: 'The count of key events.',
    deprecatedApiNames: ['conversions'],
  },
  { apiName: 'conversions', uiName: 'Conversions', type: 'TYPE_FLOAT', category: 'Event', description: 'Deprecated: use keyEvents.' },
  { apiName: 'bounceRate', uiName: 'Bounce rate', type: 'TYPE_FLOAT', category: 'Session', description: 'The percentage of sessions that were not engaged.' },
  { apiName: 'engagementRate', uiName: 'Engagement rate', type: 'TYPE_FLOAT', category: 'Session', description: 'The percentage of engaged sessions.' },
  {
    apiName: 'sessionsPerUser',
    uiName: 'Sessions per active user',
    type: 'TYPE_FLOAT',
    category: 'Session',
    description: 'The average number of sessions per active user.',
  },
  {
    apiName: 'averageSessionDuration',
    uiName: 'Average session duration',
    type: 'TYPE_SECONDS',
    category: 'Session',
    description: "The average duration (in seconds) of users' sessions.",
  },
  {
    apiName: 'userEngagementDuration',
    uiName: 'User engagement',
    type: 'TYPE_SECONDS',
    category: 'User',
    description: "The total amount of time (in seconds) your website or app was in the foreground of users' devices.",
  },
  {
    apiName: 'totalRevenue',
    uiName: 'Total revenue',
    type: 'TYPE_CURRENCY',
    category: 'Revenue',
    description: 'The sum of revenue from purchases, subscriptions, and advertising.',
  },
  { apiName: 'purchaseRevenue', uiName: 'Purchase revenue', type: 'TYPE_CURRENCY', category: 'Revenue', description: 'The sum of revenue from purchases.' },
];

const METRIC_BY_NAME = new Map(METRICS.map((m) => [m.apiName, m]));

function customDimension(name: string): DimensionDef | undefined {
  const m = CUSTOM.exec(name);
  if (!m) return undefined;
  const param = m[2] ?? '';
  const values = ['(not set)'];
  for (let i = 1; i <= 6; i++) values.push(`${param}_${i}`);
  return {
    apiName: name,
    uiName: param,
    category: m[1] === 'customUser' ? 'User' : 'Custom',
    values,
    custom: true,
  };
}

export function dimensionDef(name: string): DimensionDef | undefined {
  return DIMENSIONS.get(name) ?? customDimension(name);
}

/** True for the dimensions the fake serves, including any `customEvent:<name>` / `customUser:<name>`. */
export function isKnownDimension(name: string): boolean {
  return dimensionDef(name) !== undefined;
}

/** The type Google reports for a metric; undefined for a metric the fake does not know. */
export function metricType(name: string): MetricType | undefined {
  return METRIC_BY_NAME.get(name)?.type;
}

/** The body of `GET /v1beta/properties/{id}/metadata`. */
export function buildMetadata(propertyId: string): unknown {
  const dimensions = STATIC.map((d) => ({
    apiName: d.apiName,
    uiName: d.uiName,
    description: `${d.uiName}.`,
    category: d.category,
    ...(d.deprecatedApiNames ? { deprecatedApiNames: d.deprecatedApiNames } : {}),
  }));
  const metrics = METRICS.filter((m) => m.apiName !== 'conversions').map((m) => ({
    apiName: m.apiName,
    uiName: m.uiName,
    description: m.description,
    type: m.type,
    category: m.category,
    ...(m.deprecatedApiNames ? { deprecatedApiNames: m.deprecatedApiNames } : {}),
  }));
  return { name: `properties/${propertyId}/metadata`, dimensions, metrics };
}
