import { routeLabel } from './front-door.service';

describe(routeLabel.name, () => {
  it.each([
    ['/search', '/search'],
    ['/search.php', '/search.php'],
    ['/health/ready', '/health/ready'],
    ['/docs/swagger-ui.css', '/docs/*'],
    ['/admin/cache/question', '/admin/*'],
    // The dashboard polls /dashboard/data every few seconds: under `other` it would hide scanners.
    ['/dashboard', '/dashboard/*'],
    ['/dashboard/data', '/dashboard/*'],
    ['/dashboard/uplot.min.js', '/dashboard/*'],
    ['/dashboardx', 'other'],
    ['/wp-login.php', 'other'],
  ])('labels %s as %s', (path, label) => {
    expect(routeLabel(path)).toBe(label);
  });
});
