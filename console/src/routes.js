// Every page of the console: its path pattern, its title and, for the
// navigation bar, its label. A page is a component taking { params, query }.
import { FleetPage } from "./pages/fleet.js";

export const routes = [
  { path: "/fleet", title: "Fleet", nav: "Fleet", component: FleetPage },
];

export const HOME = "/fleet";
